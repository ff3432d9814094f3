#pragma once
// The extracts this gateway process is still working on: from just before an extract's row is
// inserted until its request has ended — refused, failed, or its body sent or abandoned — and every
// attempt of the request to close the row is over.
//
// An extract whose request ended while the database was lost keeps its row 'preparing' or
// 'requested': the closing audit entry or the row update could not be written. Its lease is this
// live process's, so no other gateway will close it; the sweeper (extract_sweeper.hpp) closes this
// process's own open rows that are not live here. Because an id is added before its row exists and
// removed only after its request stopped touching it, an open row of this process that is not live
// is one nobody will close otherwise — and a live one is never closed under its request's feet.
//
// The extract's lifecycle (gateway/api/extract_lifecycle.hpp) holds its Handle: the request, then
// the producer streaming it, own the lifecycle.
//
// Thread-safety: every member may be called from any thread.

#include <mutex>
#include <set>
#include <string>

namespace custodian::release {

class LiveExtracts {
public:
    // Keeps one id live for its lifetime. Movable; an empty handle holds nothing.
    class Handle {
    public:
        Handle() = default;
        Handle(Handle&& other) noexcept : owner_(other.owner_), id_(std::move(other.id_)) { other.owner_ = nullptr; }
        Handle& operator=(Handle&& other) noexcept {
            if (this != &other) {
                release();
                owner_ = other.owner_;
                id_ = std::move(other.id_);
                other.owner_ = nullptr;
            }
            return *this;
        }
        Handle(const Handle&) = delete;
        Handle& operator=(const Handle&) = delete;
        ~Handle() { release(); }
        explicit operator bool() const noexcept { return owner_ != nullptr; }  // holds an id

    private:
        friend class LiveExtracts;
        Handle(LiveExtracts* owner, std::string id) : owner_(owner), id_(std::move(id)) {}
        void release() {
            if (owner_) owner_->remove(id_);
            owner_ = nullptr;
        }
        LiveExtracts* owner_ = nullptr;
        std::string id_;
    };

    Handle add(const std::string& id) {
        std::lock_guard lock(mutex_);
        ids_.insert(id);
        return Handle(this, id);
    }
    bool contains(const std::string& id) const {
        std::lock_guard lock(mutex_);
        return ids_.count(id) > 0;
    }

private:
    void remove(const std::string& id) {
        std::lock_guard lock(mutex_);
        ids_.erase(id);
    }
    mutable std::mutex mutex_;
    std::set<std::string> ids_;
};

}  // namespace custodian::release
