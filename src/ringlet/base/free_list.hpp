// free_list.hpp — a bounded cache of spare heap objects, one per thread. Core-local: keep it in a thread_local.
//
// For objects that come and go with connections (a stream's send half, a slice ring's storage): release() keeps
// the object for the next acquire() instead of freeing it, so steady state allocates nothing; past kMaxCached it
// frees, so a burst of connections does not pin its peak memory for the life of the thread. The objects are kept
// as they were released: the caller resets what it needs before reuse.
#pragma once

#include <cstddef>
#include <vector>

namespace ringlet {

template <class T, class Delete, std::size_t kMaxCached = 4096>
class FreeList {
 public:
  FreeList() = default;
  FreeList(const FreeList&) = delete;
  FreeList& operator=(const FreeList&) = delete;
  ~FreeList() {
    for (T* p : free_) Delete{}(p);
  }

  // A spare object, or nullptr when none is cached (the caller allocates).
  T* acquire() noexcept {
    if (free_.empty()) return nullptr;
    T* p = free_.back();
    free_.pop_back();
    return p;
  }

  // Keeps p for reuse, or frees it when the cache is full.
  void release(T* p) {
    if (free_.size() < kMaxCached) {
      free_.push_back(p);
      return;
    }
    Delete{}(p);
  }

  std::size_t size() const noexcept { return free_.size(); }

 private:
  std::vector<T*> free_;
};

}  // namespace ringlet
