// `ondol bench` and `ondol bench regress` on the command line: flags named as vLLM's benchmark
// names them, wired to the load runner, the report and the regression check. main.cpp creates a
// BenchCli before parsing and runs it when its command was given.
#pragma once

#include <memory>

namespace CLI {
class App;
}

namespace ondol::bench {

class BenchCli {
 public:
  explicit BenchCli(CLI::App& app);  // adds the `bench` subcommand (and `bench regress`)
  ~BenchCli();
  BenchCli(const BenchCli&) = delete;
  BenchCli& operator=(const BenchCli&) = delete;

  bool parsed() const;  // `ondol bench ...` was given
  int run();            // the process exit code

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ondol::bench
