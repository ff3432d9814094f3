#pragma once
// A real `custodian serve` process (the CUSTODIAN_BINARY executable) for the tests that need the
// executable itself rather than the in-process fixture: several processes on one database, the
// partner client against a server, kill -9.
//
//   ServeProcess serve(configPath, logPath);   // fork + exec; stdout and stderr appended to logPath
//   REQUIRE(waitReady(port, std::chrono::seconds(60)));
//   serve.kill9();                              // or let the destructor send SIGTERM and wait

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "support/http_client.hpp"

namespace custodian::testing {

class ServeProcess {
public:
    ServeProcess(const std::string& configPath, const std::string& logPath) {
        // The child must not flush the test's own stdio buffers (a copy of Catch's pending output
        // would land in the test log once per process), so flush them here and touch only file
        // descriptors in the child.
        std::fflush(nullptr);
        pid_ = ::fork();
        if (pid_ == 0) {
            const int log = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (log >= 0) {
                ::dup2(log, 1);
                ::dup2(log, 2);
            }
            ::execl(CUSTODIAN_BINARY, "custodian", "serve", "--config", configPath.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        if (pid_ < 0) throw std::runtime_error("fork failed");
    }
    ~ServeProcess() { stop(SIGTERM); }
    ServeProcess(const ServeProcess&) = delete;
    ServeProcess& operator=(const ServeProcess&) = delete;

    pid_t pid() const { return pid_; }

    // Still running (reaps it if it has exited).
    bool alive() {
        if (pid_ <= 0) return false;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
        pid_ = -1;
        return false;
    }

    // SIGKILL: no shutdown code runs, exactly as a crash or the OOM killer. Waits for the exit.
    void kill9() { stop(SIGKILL); }

private:
    void stop(int signal) {
        if (pid_ <= 0) return;
        ::kill(pid_, signal);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    pid_t pid_ = -1;
};

// A whole file's bytes ("" if it cannot be read: a log the process has not written yet).
inline std::string readTextFile(const std::string& path) {
    std::string out;
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
        char buf[4096];
        size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
        std::fclose(f);
    }
    return out;
}

// Writes a configuration file; throws if it cannot.
inline void writeTextFile(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) throw std::runtime_error("cannot write " + path);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
}

// The port a `custodian serve` configured with `listen.port` 0 bound, read from the line it logs
// ("custodian: listening on http://127.0.0.1:PORT ..."); 0 if the line does not appear within
// `limit`. The kernel gives the port to the server itself, so no other process started meanwhile
// can hold it (a port chosen beforehand and freed can be taken in between).
inline uint16_t waitListeningPort(const std::string& logPath, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    static constexpr std::string_view kLine = "custodian: listening on ";
    while (std::chrono::steady_clock::now() < until) {
        const std::string log = readTextFile(logPath);
        const size_t at = log.find(kLine);
        // Until the space after the address is there, the line may still be being written.
        const size_t end = at == std::string::npos ? at : log.find(' ', at + kLine.size());
        if (end != std::string::npos) {
            const std::string url = log.substr(at + kLine.size(), end - at - kLine.size());
            const size_t colon = url.rfind(':');
            if (colon != std::string::npos && colon + 1 < url.size())
                return static_cast<uint16_t>(std::stoul(url.substr(colon + 1)));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
}

// Polls GET /readyz until it answers 200 or `limit` passes.
inline bool waitReady(uint16_t port, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        try {
            if (httpRequest(port, "GET", "/readyz").status == 200) return true;
        } catch (const std::exception&) {
            // not listening yet
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

}  // namespace custodian::testing
