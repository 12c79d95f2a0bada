#include "engine/sampling/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ondol::engine {
namespace {

struct Fed {
  std::vector<std::string> released;  // what each push released
  std::string text;                   // everything, flush included
  bool stopped = false;
};

Fed feed(const std::vector<std::string>& stops, const std::vector<std::string>& pieces,
         StopMatcherOptions options = {}) {
  StopMatcher matcher(stops, options);
  Fed fed;
  for (const std::string& piece : pieces) {
    std::string out;
    fed.stopped = matcher.push(piece, out);
    fed.released.push_back(out);
    fed.text += out;
  }
  std::string out;
  matcher.flush(out);
  fed.text += out;
  return fed;
}

TEST(StopMatcher, PassesTextThroughWithoutStopStrings) {
  const Fed fed = feed({}, {"Hello", " world"});
  EXPECT_EQ(fed.released, (std::vector<std::string>{"Hello", " world"}));
  EXPECT_FALSE(fed.stopped);
}

TEST(StopMatcher, TruncatesBeforeStopStringInOnePiece) {
  const Fed fed = feed({"STOP"}, {"Hello STOP world"});
  EXPECT_TRUE(fed.stopped);
  EXPECT_EQ(fed.text, "Hello ");
}

TEST(StopMatcher, HoldsBackPossibleStartAndDetectsStopAcrossPieces) {
  StopMatcher matcher(std::vector<std::string>{"STOP"});
  std::string out;
  EXPECT_FALSE(matcher.push("Hel", out));
  EXPECT_EQ(out, "Hel");
  EXPECT_FALSE(matcher.push("lo S", out));
  EXPECT_EQ(out, "Hello ");  // "S" might start STOP
  EXPECT_EQ(matcher.num_held_bytes(), 1u);
  EXPECT_FALSE(matcher.push("TO", out));
  EXPECT_EQ(out, "Hello ");
  EXPECT_TRUE(matcher.push("P and more", out));
  EXPECT_EQ(out, "Hello ");
  EXPECT_EQ(matcher.matched_stop_string(), "STOP");
  EXPECT_TRUE(matcher.push("ignored", out));  // stopped: nothing more comes out
  matcher.flush(out);
  EXPECT_EQ(out, "Hello ");
}

TEST(StopMatcher, ReleasesHeldTextWhenItTurnsOutNotToBeAStop) {
  const Fed fed = feed({"abc"}, {"xab", "d", "ab"});
  EXPECT_EQ(fed.released, (std::vector<std::string>{"x", "abd", ""}));
  EXPECT_FALSE(fed.stopped);
  EXPECT_EQ(fed.text, "xabdab");  // flush released the trailing "ab"
}

TEST(StopMatcher, MultiByteUtf8) {
  // "日本" is six bytes; the pieces split it between characters.
  Fed fed = feed({"日本"}, {"こんにちは日", "本語"});
  EXPECT_TRUE(fed.stopped);
  EXPECT_EQ(fed.released, (std::vector<std::string>{"こんにちは", ""}));
  // A held "é" (two bytes) is released whole when the next piece rules the stop out.
  fed = feed({"é!"}, {"café", "?"});
  EXPECT_FALSE(fed.stopped);
  EXPECT_EQ(fed.released, (std::vector<std::string>{"caf", "é?"}));
  // An emoji stop string spanning three pieces.
  fed = feed({"🙂 bye"}, {"ok 🙂", " b", "ye now"});
  EXPECT_TRUE(fed.stopped);
  EXPECT_EQ(fed.text, "ok ");
}

TEST(StopMatcher, OverlappingStopStringsFirstCompletedWins) {
  // "bc" completes (at 4) before "abcd" (at 5), although "abcd" starts earlier: generation
  // stops as soon as a stop string has been produced.
  Fed fed = feed({"abcd", "bc"}, {"xab", "cd"});
  EXPECT_TRUE(fed.stopped);
  EXPECT_EQ(fed.text, "xa");
  // The same within a single piece: the answer does not depend on the split.
  fed = feed({"abcd", "bc"}, {"xabcd"});
  EXPECT_EQ(fed.text, "xa");
  // Self-overlapping stop string: "aab" inside "aaab".
  fed = feed({"aab"}, {"aa", "ab"});
  EXPECT_EQ(fed.text, "a");
  // Same end: the one that starts first (the longer one) is reported.
  StopMatcher matcher(std::vector<std::string>{"bc", "abc"});
  std::string out;
  EXPECT_TRUE(matcher.push("zabcd", out));
  EXPECT_EQ(out, "z");
  EXPECT_EQ(matcher.matched_stop_string(), "abc");
}

TEST(StopMatcher, IncludeStopString) {
  const Fed fed = feed({"END"}, {"the E", "ND of it"}, {.include_stop_string = true});
  EXPECT_TRUE(fed.stopped);
  EXPECT_EQ(fed.text, "the END");
}

// Property: whatever the split into pieces, the released text is the full text cut before the
// stop-string occurrence that ends first (ties: starts first), and every release is a prefix
// of that answer.
TEST(StopMatcher, RandomSplitsAgreeWithWholeTextSearch) {
  std::mt19937 rng(17);
  auto random_string = [&](size_t min_len, size_t max_len) {
    std::string s(std::uniform_int_distribution<size_t>(min_len, max_len)(rng), 'a');
    for (char& c : s) c = static_cast<char>('a' + std::uniform_int_distribution<int>(0, 2)(rng));
    return s;
  };
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::string> stops;
    const int num_stops = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < num_stops; ++i) stops.push_back(random_string(1, 4));
    const std::string text = random_string(0, 30);
    size_t cut = text.size();
    size_t first_end = std::string::npos;
    for (const std::string& s : stops) {
      const size_t pos = text.find(s);
      if (pos == std::string::npos) continue;
      if (pos + s.size() < first_end || (pos + s.size() == first_end && pos < cut)) {
        first_end = pos + s.size();
        cut = pos;
      }
    }
    const std::string expected = text.substr(0, cut);

    std::vector<std::string> pieces;
    for (size_t at = 0; at < text.size();) {
      const size_t len = std::uniform_int_distribution<size_t>(0, 5)(rng);  // empty pieces too
      pieces.push_back(text.substr(at, len));
      at += len;
    }
    const Fed fed = feed(stops, pieces);
    std::string all_stops;
    for (const std::string& s : stops) all_stops += "[" + s + "]";
    ASSERT_EQ(fed.text, expected) << "text " << text << " stops " << all_stops;
    EXPECT_EQ(fed.stopped, cut != text.size());
    std::string so_far;
    for (const std::string& r : fed.released) {
      so_far += r;
      ASSERT_EQ(expected.compare(0, so_far.size(), so_far), 0);
    }
  }
}

}  // namespace
}  // namespace ondol::engine
