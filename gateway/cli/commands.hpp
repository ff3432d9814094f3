#pragma once
// Every `custodian` subcommand is one function in gateway/cli/<name>.cpp, listed once in
// gateway/main.cpp's command table. Each receives the arguments after its own name and returns
// the process exit code; `--help` anywhere in them prints the command's usage and returns 0.

namespace custodian::cli {

struct Command {
    const char* name;
    const char* summary;
    int (*run)(int argc, char** argv);
};

}  // namespace custodian::cli
