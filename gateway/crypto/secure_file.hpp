#pragma once
// File IO for keys and decrypted output: secrets are read straight into sodium memory, key files
// are created exclusively with an exact mode, and outputs appear atomically (temporary file in the
// same directory, fsync, rename) so a reader never sees a partial file and a failure leaves none.

#include <cstdio>
#include <string>

#include "anonymizer/status.hpp"
#include "gateway/crypto/keys.hpp"

namespace custodian::crypto {

// Text held in sodium memory: buffer.data()[0, length).
struct SecureText {
    SecureBytes buffer;
    size_t length = 0;
};

// Reads a small (≤ 4 KiB) secret file. PermissionDenied if group or others have any access to it,
// with the chmod that fixes it.
Result<SecureText> readPrivateFile(const std::string& path);
// Reads a small (≤ 64 KiB) public file.
Result<std::string> readPublicFile(const std::string& path);
// Creates `path` with exactly `mode` and `content`, durably. Aborted if it already exists (never
// overwrites, also under a race); other failures leave nothing behind.
Status writeFileExclusive(const std::string& path, ByteView content, unsigned mode);

// OK if an output can be renamed over `path`: nothing is there, or a regular file (through a
// symlink too). InvalidArgument for a device, FIFO, socket or directory — renaming a temporary file
// over /dev/null would replace the device for every process on the machine.
Status checkReplaceableOutput(const std::string& path);

// An output file that only appears at `path` once commit() succeeds. Until then data goes to a
// temporary file next to it (mode 0600), which is removed if the object is destroyed uncommitted.
// Not thread-safe.
class AtomicOutputFile {
public:
    static Result<AtomicOutputFile> create(const std::string& path);
    ~AtomicOutputFile();
    AtomicOutputFile(AtomicOutputFile&& other) noexcept;
    AtomicOutputFile& operator=(AtomicOutputFile&&) = delete;
    AtomicOutputFile(const AtomicOutputFile&) = delete;
    AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;

    Status write(ByteView bytes);
    // fsync, set the final mode (0600 unless told otherwise), rename into place, fsync directory.
    Status commit(unsigned mode = 0600);
    // Removes the temporary file now (also done by the destructor).
    void discard() noexcept;

private:
    AtomicOutputFile(std::string path, std::string tempPath, int fd)
        : path_(std::move(path)), tempPath_(std::move(tempPath)), fd_(fd) {}
    std::string path_;
    std::string tempPath_;
    int fd_ = -1;
};

}  // namespace custodian::crypto
