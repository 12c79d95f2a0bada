#include "http/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ondol::http {
namespace {

std::vector<std::string> feed_all(SseParser& p, std::string_view bytes) {
  std::vector<std::string> events;
  EXPECT_TRUE(p.feed(bytes, events));
  return events;
}

TEST(SseParser, WholeEventsInOnePiece) {
  SseParser p;
  auto events = feed_all(p, "data: {\"a\":1}\n\ndata: [DONE]\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "{\"a\":1}");
  EXPECT_EQ(events[1], "[DONE]");
  EXPECT_EQ(p.pending_bytes(), 0u);
}

TEST(SseParser, EventSplitAtEveryByte) {
  const std::string stream = "data: first\n\ndata: second\r\n\r\ndata:third\n\n";
  SseParser p;
  std::vector<std::string> all;
  for (char c : stream) {
    auto events = feed_all(p, std::string_view(&c, 1));
    all.insert(all.end(), events.begin(), events.end());
  }
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], "first");
  EXPECT_EQ(all[1], "second");
  EXPECT_EQ(all[2], "third");  // no space after the colon is allowed
}

TEST(SseParser, IgnoresCommentsAndOtherFields) {
  SseParser p;
  auto events = feed_all(p, ": keep-alive\n\nevent: message\nid: 7\nretry: 10\ndata: x\n\n");
  ASSERT_EQ(events.size(), 1u);  // the comment-only event carries no data
  EXPECT_EQ(events[0], "x");
}

TEST(SseParser, MultiLineDataJoinedWithNewline) {
  SseParser p;
  auto events = feed_all(p, "data: a\ndata: b\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], "a\nb");
}

TEST(SseParser, IncompleteEventIsHeldBack) {
  SseParser p;
  EXPECT_TRUE(feed_all(p, "data: partial").empty());
  EXPECT_EQ(p.pending_bytes(), 13u);
  auto events = feed_all(p, "\n\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0], "partial");
}

TEST(SseParser, RejectsAnEventBeyondTheLimit) {
  SseParser p;
  std::vector<std::string> events;
  std::string huge(SseParser::kMaxEventBytes + 1, 'x');
  EXPECT_FALSE(p.feed(huge, events));
}

TEST(SseWriter, FramesData) {
  std::string out;
  append_sse_data(out, "{}");
  EXPECT_EQ(out, "data: {}\n\n");
  SseParser p;
  auto events = feed_all(p, out + std::string(kSseDone));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "{}");
  EXPECT_EQ(events[1], "[DONE]");
}

}  // namespace
}  // namespace ondol::http
