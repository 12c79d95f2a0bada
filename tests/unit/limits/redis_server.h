// Starts Debian's redis-server on a free loopback port in a temporary directory, for tests:
// no persistence, stopped (and its directory removed) when the object goes away. Can be
// stopped, frozen (SIGSTOP: the port accepts but nothing answers) and started again on the
// same port.
#pragma once

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ondol::limits::testing {

class RedisServer {
 public:
  explicit RedisServer(std::string password = "") : password_(std::move(password)) {
    char tmpl[] = "/tmp/ondol-redis-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = free_port();
  }
  ~RedisServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  static std::string binary() {
    for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"})
      if (::access(p, X_OK) == 0) return p;
    return "";
  }

  // Starts the server and waits until its port accepts connections. False (with a test
  // failure) when redis-server is missing or does not come up.
  bool start() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (start_once()) return true;
      if (pid_ != -1) break;  // it did not die of a taken port: a real failure
      port_ = free_port();    // another process took the port between probe and bind
    }
    ADD_FAILURE() << "redis-server did not start on port " << port_ << "; see " << dir_;
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }

  void freeze() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void thaw() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  uint16_t port() const { return port_; }
  const std::string& password() const { return password_; }

 private:
  // Starts the server and waits until its port accepts connections and the child is still
  // alive (a server that lost the port to another exits at once; pid_ is then -1).
  bool start_once() {
    std::string bin = binary();
    if (bin.empty()) {
      ADD_FAILURE() << "redis-server is not installed (apt-get install redis-server; `make deps`)";
      pid_ = 0;
      return false;
    }
    std::vector<std::string> args = {bin,
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_,
                                     "--daemonize",
                                     "no",
                                     "--loglevel",
                                     "warning",
                                     "--logfile",
                                     dir_ + "/redis.log"};
    if (!password_.empty()) {
      args.push_back("--requirepass");
      args.push_back(password_);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, bin.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = 0;
      return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      if (accepts()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return false;
        }
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return false;
  }

  static uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  bool accepts() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  std::string password_;
  std::string dir_;
  uint16_t port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace ondol::limits::testing
