// ChatMessage: one turn of an OpenAI chat conversation as the engine sees it — a role
// ("system", "user", "assistant", ...) and its text. Content parts, tool calls and names are
// resolved to text (or refused) by the request parser before they reach the engine.
#pragma once

#include <string>

namespace ondol::engine {

struct ChatMessage {
  std::string role;
  std::string content;
};

}  // namespace ondol::engine
