#include "gateway/crypto/secure_file.hpp"

#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace custodian::crypto {

namespace {

Status ioError(const std::string& path, const char* what) {
    return Status(StatusCode::Unavailable, path + ": " + what + ": " + std::strerror(errno));
}

std::string directoryOf(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

void fsyncDirectory(const std::string& path) {
    const int dfd = ::open(directoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

Status writeAll(int fd, ByteView bytes, const std::string& path) {
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return ioError(path, "write failed");
        }
        done += static_cast<size_t>(n);
    }
    return Status::ok();
}

// mkstemp in the directory of `path`; returns fd and fills tempPath.
int makeTemp(const std::string& path, std::string& tempPath) {
    std::string templ = path + ".tmp.XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    const int fd = ::mkostemp(buf.data(), O_CLOEXEC);
    if (fd >= 0) tempPath.assign(buf.data());
    return fd;
}

// Reads at most `limit` bytes of an open fd into `out` (capacity ≥ limit + 1). Returns the length
// or -1; -2 if the file is larger than limit.
long readLimited(int fd, uint8_t* out, size_t limit) {
    size_t done = 0;
    for (;;) {
        const ssize_t n = ::read(fd, out + done, limit + 1 - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
        if (done > limit) return -2;
    }
    return static_cast<long>(done);
}

}  // namespace

Result<SecureText> readPrivateFile(const std::string& path) {
    constexpr size_t kLimit = 4096;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return notFound(path + ": no such key file");
        return ioError(path, "cannot open key file");
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        ::close(fd);
        return ioError(path, "cannot stat key file");
    }
    if (!S_ISREG(info.st_mode)) {
        ::close(fd);
        return invalidArgument(path + ": not a regular file");
    }
    if ((info.st_mode & 077) != 0) {
        ::close(fd);
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
        return permissionDenied(path + ": secret key file is accessible by group or others (mode " + mode +
                                "); run `chmod 600 " + path + "` and check who has seen it");
    }
    auto buffer = SecureBytes::allocate(kLimit + 1);
    if (!buffer) {
        ::close(fd);
        return buffer.status();
    }
    const long n = readLimited(fd, buffer->data(), kLimit);
    ::close(fd);
    if (n == -2) return invalidArgument(path + ": too large for a key file");
    if (n < 0) return ioError(path, "cannot read key file");
    return SecureText{std::move(buffer).value(), static_cast<size_t>(n)};
}

Result<std::string> readPublicFile(const std::string& path) {
    constexpr size_t kLimit = 65536;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return notFound(path + ": no such file");
        return ioError(path, "cannot open");
    }
    std::vector<uint8_t> buf(kLimit + 1);
    const long n = readLimited(fd, buf.data(), kLimit);
    ::close(fd);
    if (n == -2) return invalidArgument(path + ": too large for a key file");
    if (n < 0) return ioError(path, "cannot read");
    return std::string(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n));
}

Status writeFileExclusive(const std::string& path, ByteView content, unsigned mode) {
    std::string temp;
    const int fd = makeTemp(path, temp);
    if (fd < 0) return ioError(path, "cannot create a temporary file next to it");
    Status st = writeAll(fd, content, temp);
    if (st && ::fchmod(fd, static_cast<mode_t>(mode)) != 0) st = ioError(temp, "chmod failed");
    if (st && ::fsync(fd) != 0) st = ioError(temp, "fsync failed");
    ::close(fd);
    if (st) {
        // link() fails with EEXIST instead of replacing: an existing key is never overwritten.
        if (::link(temp.c_str(), path.c_str()) != 0) {
            st = errno == EEXIST ? Status(StatusCode::Aborted, path + " already exists; refusing to overwrite it")
                                 : ioError(path, "cannot create");
        }
    }
    ::unlink(temp.c_str());
    if (st) fsyncDirectory(path);
    return st;
}

Status checkReplaceableOutput(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Status::ok();  // nothing there (or unreadable: creating says why)
    if (S_ISREG(st.st_mode)) return Status::ok();
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return invalidArgument(path + " is " + kind +
                           ": the output is written to a temporary file and renamed over its path, so it must be a "
                           "regular file or a new path");
}

Result<AtomicOutputFile> AtomicOutputFile::create(const std::string& path) {
    if (Status s = checkReplaceableOutput(path); !s) return s;
    std::string temp;
    const int fd = makeTemp(path, temp);
    if (fd < 0) return ioError(path, "cannot create a temporary file next to it");
    return AtomicOutputFile(path, std::move(temp), fd);
}

AtomicOutputFile::~AtomicOutputFile() { discard(); }

AtomicOutputFile::AtomicOutputFile(AtomicOutputFile&& other) noexcept
    : path_(std::move(other.path_)), tempPath_(std::move(other.tempPath_)), fd_(std::exchange(other.fd_, -1)) {
    other.tempPath_.clear();
}

Status AtomicOutputFile::write(ByteView bytes) {
    if (fd_ < 0) return failedPrecondition(path_ + ": output already closed");
    return writeAll(fd_, bytes, tempPath_);
}

Status AtomicOutputFile::commit(unsigned mode) {
    if (fd_ < 0) return failedPrecondition(path_ + ": output already closed");
    Status st;
    if (::fchmod(fd_, static_cast<mode_t>(mode)) != 0) st = ioError(tempPath_, "chmod failed");
    if (st && ::fsync(fd_) != 0) st = ioError(tempPath_, "fsync failed");
    if (::close(fd_) != 0 && st) st = ioError(tempPath_, "close failed");
    fd_ = -1;
    if (st && ::rename(tempPath_.c_str(), path_.c_str()) != 0) st = ioError(path_, "rename failed");
    if (!st) {
        discard();
        return st;
    }
    tempPath_.clear();
    fsyncDirectory(path_);
    return st;
}

void AtomicOutputFile::discard() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (!tempPath_.empty()) {
        ::unlink(tempPath_.c_str());
        tempPath_.clear();
    }
}

}  // namespace custodian::crypto
