// The logger: JSON string escaping, level names, and whole lines written through init()/shutdown()
// checked with a real JSON parser.
#include "common/log.h"

#include <gtest/gtest.h>

#include <cmath>
#include <rapidjson/document.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ondol::log {
namespace {

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// --- append_json_string ---------------------------------------------------------------------

TEST(LogJsonString, PlainTextIsQuoted) {
  EXPECT_EQ(json_string("hello world"), "\"hello world\"");
  EXPECT_EQ(json_string(""), "\"\"");
}

TEST(LogJsonString, AppendsWithoutClearing) {
  std::string out = "{\"k\":";
  append_json_string(out, "v");
  EXPECT_EQ(out, "{\"k\":\"v\"");
}

TEST(LogJsonString, EscapesQuoteAndBackslash) {
  EXPECT_EQ(json_string("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(json_string("C:\\path\\"), "\"C:\\\\path\\\\\"");
  EXPECT_EQ(json_string("/"), "\"/\"");  // the solidus needs no escape
}

TEST(LogJsonString, EscapesControlCharacters) {
  EXPECT_EQ(json_string("a\nb\rc\td"), "\"a\\nb\\rc\\td\"");
  EXPECT_EQ(json_string(std::string_view("\0", 1)), "\"\\u0000\"");
  EXPECT_EQ(json_string("\x01"), "\"\\u0001\"");
  EXPECT_EQ(json_string("\b\f"), "\"\\u0008\\u000c\"");
  EXPECT_EQ(json_string("\x1b[31m"), "\"\\u001b[31m\"");  // terminal escapes cannot forge output
  EXPECT_EQ(json_string("\x1f"), "\"\\u001f\"");
  EXPECT_EQ(json_string("\x7f"), "\"\x7f\"");  // DEL is not a JSON control character
}

TEST(LogJsonString, Utf8PassesThrough) {
  const std::string text =
      "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89";  // héllo 日本 🎉
  EXPECT_EQ(json_string(text), "\"" + text + "\"");
}

// Every ASCII byte, escaped and parsed back by a strict parser, gives the original string.
TEST(LogJsonString, RoundTripsEveryAsciiByte) {
  std::string all;
  for (int c = 0; c < 128; ++c) all.push_back(static_cast<char>(c));
  std::string literal = json_string(all);
  for (char c : literal) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "raw control byte";
  rapidjson::Document doc;
  doc.Parse(literal.c_str(), literal.size());
  ASSERT_FALSE(doc.HasParseError());
  ASSERT_TRUE(doc.IsString());
  EXPECT_EQ(std::string(doc.GetString(), doc.GetStringLength()), all);
}

// --- parse_level ----------------------------------------------------------------------------

TEST(LogParseLevel, KnownNames) {
  EXPECT_EQ(parse_level("debug", Level::Error), Level::Debug);
  EXPECT_EQ(parse_level("info", Level::Error), Level::Info);
  EXPECT_EQ(parse_level("warn", Level::Error), Level::Warn);
  EXPECT_EQ(parse_level("warning", Level::Error), Level::Warn);
  EXPECT_EQ(parse_level("error", Level::Debug), Level::Error);
}

TEST(LogParseLevel, UnknownNamesGiveTheFallback) {
  EXPECT_EQ(parse_level("", Level::Warn), Level::Warn);
  EXPECT_EQ(parse_level("verbose", Level::Info), Level::Info);
  EXPECT_EQ(parse_level("infos", Level::Debug), Level::Debug);
  EXPECT_EQ(parse_level("err", Level::Info), Level::Info);
}

// --- whole lines ----------------------------------------------------------------------------

class LogFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "ondol-log-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/test.log";
  }
  void TearDown() override {
    shutdown();
    init_level(Level::Info);  // leave the global level as a fresh process has it
    std::filesystem::remove_all(dir_);
  }

  // Sets the global level without keeping a sink.
  static void init_level(Level level) {
    init({.level = level, .file = "/dev/null"});
    shutdown();
  }

  std::vector<std::string> lines() {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(LogFile, JsonLinesCarryLevelComponentMessageAndFields) {
  init({.level = Level::Info, .file = path_});
  info("gateway", "request \"done\"\n",
       {{"request_id", "r-1"},
        {"status", 200},
        {"bytes", int64_t{1} << 40},
        {"tokens", uint64_t{7}},
        {"seconds", 0.25},
        {"stream", true},
        {"model", std::string("tiny\tllama")}});
  shutdown();

  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  rapidjson::Document doc;
  doc.Parse(got[0].c_str());
  ASSERT_FALSE(doc.HasParseError()) << got[0];
  ASSERT_TRUE(doc.IsObject());
  EXPECT_TRUE(doc["ts"].IsString());
  EXPECT_EQ(std::string(doc["level"].GetString()), "info");
  EXPECT_EQ(std::string(doc["component"].GetString()), "gateway");
  EXPECT_EQ(std::string(doc["msg"].GetString()), "request \"done\"\n");
  EXPECT_EQ(std::string(doc["request_id"].GetString()), "r-1");
  EXPECT_EQ(doc["status"].GetInt64(), 200);
  EXPECT_EQ(doc["bytes"].GetInt64(), int64_t{1} << 40);
  EXPECT_EQ(doc["tokens"].GetInt64(), 7);
  EXPECT_EQ(doc["seconds"].GetDouble(), 0.25);
  EXPECT_TRUE(doc["stream"].GetBool());
  EXPECT_EQ(std::string(doc["model"].GetString()), "tiny\tllama");
  // Keys in a fixed order: ts, level, component, msg, then the fields as given.
  EXPECT_TRUE(got[0].starts_with("{\"ts\":\"")) << got[0];
  EXPECT_LT(got[0].find("\"level\""), got[0].find("\"component\""));
  EXPECT_LT(got[0].find("\"msg\""), got[0].find("\"request_id\""));
  EXPECT_LT(got[0].find("\"request_id\""), got[0].find("\"model\""));
}

TEST_F(LogFile, NonFiniteNumbersStayValidJson) {
  init({.level = Level::Info, .file = path_});
  info("c", "m", {{"nan", std::nan("")}, {"inf", HUGE_VAL}, {"ok", 1.5}});
  shutdown();
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  rapidjson::Document doc;
  doc.Parse(got[0].c_str());
  ASSERT_FALSE(doc.HasParseError()) << got[0];
  EXPECT_TRUE(doc["nan"].IsNull());
  EXPECT_TRUE(doc["inf"].IsNull());
  EXPECT_EQ(doc["ok"].GetDouble(), 1.5);
}

TEST_F(LogFile, TimestampIsUtcWithMilliseconds) {
  init({.level = Level::Info, .file = path_});
  info("c", "m");
  shutdown();
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  rapidjson::Document doc;
  doc.Parse(got[0].c_str());
  ASSERT_FALSE(doc.HasParseError());
  std::string ts = doc["ts"].GetString();
  // 2024-05-01T12:34:56.789Z
  ASSERT_EQ(ts.size(), 24u) << ts;
  for (size_t i : {4u, 7u}) EXPECT_EQ(ts[i], '-') << ts;
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts[13], ':');
  EXPECT_EQ(ts[16], ':');
  EXPECT_EQ(ts[19], '.');
  EXPECT_EQ(ts[23], 'Z');
}

TEST_F(LogFile, LevelFiltersLowerLevels) {
  init({.level = Level::Warn, .file = path_});
  EXPECT_FALSE(enabled(Level::Debug));
  EXPECT_FALSE(enabled(Level::Info));
  EXPECT_TRUE(enabled(Level::Warn));
  EXPECT_TRUE(enabled(Level::Error));
  debug("c", "debug line");
  info("c", "info line");
  warn("c", "warn line");
  error("c", "error line");
  shutdown();
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].find("\"level\":\"warn\""), std::string::npos);
  EXPECT_NE(got[0].find("warn line"), std::string::npos);
  EXPECT_NE(got[1].find("\"level\":\"error\""), std::string::npos);
  EXPECT_NE(got[1].find("error line"), std::string::npos);
}

// Errors are flushed at once, without waiting for the flusher or shutdown().
TEST_F(LogFile, ErrorIsWrittenImmediately) {
  init({.level = Level::Info, .file = path_});
  error("engine", "out of memory");
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find("out of memory"), std::string::npos);
}

TEST_F(LogFile, ManyThreadsWriteWholeLines) {
  constexpr int kThreads = 4;
  constexpr int kLinesPerThread = 500;
  init({.level = Level::Info, .file = path_});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLinesPerThread; ++i) info("c", "line", {{"t", t}, {"i", i}});
    });
  }
  for (auto& th : threads) th.join();
  shutdown();
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), static_cast<size_t>(kThreads * kLinesPerThread));
  std::vector<int> seen(kThreads, 0);
  for (const std::string& line : got) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    ASSERT_FALSE(doc.HasParseError()) << line;
    int t = doc["t"].GetInt();
    EXPECT_EQ(doc["i"].GetInt(), seen[t]) << "lines of one thread keep their order";
    ++seen[t];
  }
}

TEST_F(LogFile, TextModeWritesLevelComponentMessageAndFields) {
  init({.level = Level::Info, .file = path_, .json = false});
  warn("router", "cooldown", {{"deployment", "a"}, {"failures", 3}, {"open", true}});
  shutdown();
  std::vector<std::string> got = lines();
  ASSERT_EQ(got.size(), 1u);
  // "<timestamp> warn  router: cooldown deployment=a failures=3 open=true"
  size_t space = got[0].find(' ');
  ASSERT_NE(space, std::string::npos);
  EXPECT_EQ(got[0].substr(space), " warn  router: cooldown deployment=a failures=3 open=true");
}

// Before init() a line goes straight to stderr, so early errors are never lost.
TEST(LogBeforeInit, WritesToStderrSynchronously) {
  ::testing::internal::CaptureStderr();
  warn("startup", "no config", {{"path", "/etc/ondol.yaml"}});
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.back(), '\n');
  rapidjson::Document doc;
  doc.Parse(err.c_str(), err.size() - 1);
  ASSERT_FALSE(doc.HasParseError()) << err;
  EXPECT_EQ(std::string(doc["component"].GetString()), "startup");
  EXPECT_EQ(std::string(doc["path"].GetString()), "/etc/ondol.yaml");
}

}  // namespace
}  // namespace ondol::log

namespace ondol::log {
namespace {

class LogRotation : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "ondol-logrot-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/ondol.log";
  }
  void TearDown() override {
    shutdown();
    init({.level = Level::Info, .file = "/dev/null"});
    shutdown();
    std::filesystem::remove_all(dir_);
  }
  static std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  std::string dir_, path_;
};

// Past the size limit the file moves to .1 (and .1 to .2); the oldest beyond max_backups is
// dropped; no line is split across files, and the newest lines are in the live file.
TEST_F(LogRotation, RotatesBySizeKeepingWholeLinesAndAtMostMaxBackups) {
  init({.level = Level::Info, .file = path_, .max_file_bytes = 4000, .max_backups = 2});
  const int kLines = 400;
  for (int i = 0; i < kLines; ++i) {
    info("test", "line", {{"i", i}, {"pad", std::string_view("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")}});
    // Error lines flush at once: each makes a batch of its own, so rotation happens mid-run.
    if (i % 20 == 19) error("test", "flush", {{"i", i}});
  }
  shutdown();
  EXPECT_TRUE(std::filesystem::exists(path_ + ".1"));
  EXPECT_TRUE(std::filesystem::exists(path_ + ".2"));
  EXPECT_FALSE(std::filesystem::exists(path_ + ".3"));
  int last_seen = -1;
  size_t total = 0;
  for (const std::string& p : {path_ + ".2", path_ + ".1", path_}) {
    for (const std::string& line : read_lines(p)) {
      ASSERT_TRUE(line.starts_with("{\"ts\":") && line.ends_with("}")) << p << ": " << line;
      ++total;
      const size_t at = line.find("\"i\":");
      ASSERT_NE(at, std::string::npos);
      const int i = std::stoi(line.substr(at + 4));
      EXPECT_GE(i, last_seen) << "files out of order";  // .2 older than .1 older than live
      last_seen = i;
    }
  }
  EXPECT_EQ(last_seen, kLines - 1);  // the newest line survived
  EXPECT_LT(total, static_cast<size_t>(kLines + kLines / 20));  // the oldest were dropped
  EXPECT_LE(std::filesystem::file_size(path_ + ".1"), 4000u + 2000u);
}

TEST_F(LogRotation, ExistingFileSizeCountsTowardsTheLimit) {
  {
    std::ofstream prior(path_);
    prior << std::string(3990, 'x') << "\n";
  }
  init({.level = Level::Info, .file = path_, .max_file_bytes = 4000, .max_backups = 1});
  error("test", "pushes it over");
  shutdown();
  EXPECT_TRUE(std::filesystem::exists(path_ + ".1"));
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);
}

}  // namespace
}  // namespace ondol::log
