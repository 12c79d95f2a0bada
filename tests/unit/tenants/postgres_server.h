// A throwaway PostgreSQL for tests, through tests/lib/postgres.sh: started on a free loopback
// port in a temporary directory, stopped and removed when the object goes away; can be stopped
// and started again on the same port and data (a server restart).
#pragma once

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ondol::tenants::testing {

class PostgresServer {
 public:
  PostgresServer() {
    char tmpl[] = "/tmp/ondol-pg-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = free_port();
  }
  ~PostgresServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool start() {
    std::string out;
    if (!run(fmt("start {}/pg {}", dir_, port_), &out)) {
      ADD_FAILURE() << "postgres did not start: " << out;
      return false;
    }
    while (!out.empty() && out.back() == '\n') out.pop_back();
    url_ = out;
    return true;
  }
  void stop() { run(fmt("stop {}/pg", dir_), nullptr); }
  void kill() { run(fmt("kill {}/pg", dir_), nullptr); }
  const std::string& url() const { return url_; }
  const std::string& dir() const { return dir_; }

 private:
  static std::string fmt(const char* pattern, const std::string& a, int b = -1) {
    std::string s = pattern;
    s.replace(s.find("{}"), 2, a);
    if (b >= 0) s.replace(s.find("{}"), 2, std::to_string(b));
    return s;
  }
  static bool run(const std::string& args, std::string* out) {
    std::string cmd = std::string(ONDOL_SOURCE_DIR) + "/tests/lib/postgres.sh " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return false;
    std::array<char, 512> buf;
    std::string text;
    while (std::fgets(buf.data(), buf.size(), p)) text += buf.data();
    int rc = ::pclose(p);
    if (out) *out = text;
    return rc == 0;
  }
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  std::string dir_;
  int port_;
  std::string url_;
};

}  // namespace ondol::tenants::testing
