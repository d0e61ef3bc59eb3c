// file_cache.hpp — the open-file cache of the static server: descriptor, stat and the response strings derived
// from them, per path, so a hot file costs no open(2) and no stat(2) per request. Core-local: one per loop.
//
// Entries are keyed by the normalised path relative to the root ("" is the root itself). Each holds:
//  - the metadata a response needs: size, mtime, a strong ETag, Last-Modified text and Content-Type;
//  - either the file's whole content as a pooled Slice (files up to `memory_limit` bytes: served from memory, the
//    descriptor is closed at once) or an open descriptor (larger files: served with sendfile).
// Directories are cached too (metadata only), so "/dir/" → "/dir/index.html" costs lookups, not syscalls.
//
// Validators must describe the bytes we send. Two kinds of entry, two rules:
//  - A file sent with sendfile (an open descriptor) is read at send time, so its bytes are whatever the inode holds
//    then. Every hit therefore fstats the descriptor (no path walk: one cheap syscall beside a sendfile) and drops
//    the entry when size, mtime or ctime (all in ns) changed: a rewrite in place keeps the inode, so only these
//    catch it, and ctime also moves when a tool puts the old mtime back (touch -r, rsync -t) — userspace cannot
//    set ctime. A rewrite is seen by the next request, never answered with the old ETag or Last-Modified.
//  - A file held in memory is a snapshot: its bytes and validators were taken together (fstat before and after
//    the read must agree, else the load fails with EAGAIN: the file is changing under us). It stays consistent
//    whatever happens on disk; it may be up to `revalidate_after` old, like nginx's open_file_cache_valid.
// Revalidation: an entry is trusted for `revalidate_after` (1 s by default) after it was checked; the first hit
// after that stats the path again (by path, not the descriptor: a file replaced by rename must be noticed) and
// compares device, inode, size, mtime and ctime; a changed file is dropped and opened afresh.
// What remains possible: timestamps come from the kernel's coarse clock (a tick of 1-10 ms), so a second write in
// the same tick as the one we saw, with the same size, changes no stat field. For a snapshot taken that close to
// a change ("racy", as git calls it: ctime within `racy_window` of the load) the revalidation re-reads the file
// and compares the bytes, so such a snapshot too lives at most about a second. A sendfile entry has no snapshot:
// it sends the new bytes, but with the ETag of the old ones when size and mtime (in seconds, nginx's format) are
// unchanged — the price of not hashing content. And a write racing a send in flight mixes old and new bytes in
// that one response, as with any server that does not copy the file.
//
// Bounded: at most `max_entries`, least recently used evicted first. A FileRef keeps its entry (and descriptor)
// alive after eviction or replacement until the response using it is sent.
//
// Safety: opens use openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) on the root's descriptor, so no symlink and
// no ".." can lead outside the root (the path is normalised before, too). When openat2 is not available (old
// kernel, seccomp), openat plus a check of the resolved /proc/self/fd link against the root's real path does the
// same job. FollowSymlinks::yes allows symlinks that leave the root. Non-regular files (FIFOs, devices, sockets)
// are refused: opening uses O_NONBLOCK so a FIFO cannot block the loop.
//
// Disk access is synchronous on the loop: a miss costs an open, an fstat and (small files) a pread. Fine for files
// in the page cache, which is the workload this server is built for; a cold, slow disk stalls the loop.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ringlet/buf/slice.hpp"
#include "ringlet/http/conditional.hpp"
#include "ringlet/proto/http/date.hpp"
#include "ringlet/base/result.hpp"

namespace ringlet::http {

enum class FollowSymlinks : bool { no = false, yes = true };

struct FileCacheOptions {
  std::size_t max_entries = 1024;
  std::size_t memory_limit = 16 * 1024;          // files up to this size are kept in memory (0: never)
  std::int64_t revalidate_after_ns = 1'000'000'000;
  // A snapshot whose file changed less than this before it was taken is re-read at revalidation (see above). Far
  // above the kernel's timestamp tick; compared against CLOCK_REALTIME_COARSE, the clock the kernel stamps with
  // (Linux 6.13+ may stamp a finer time, ahead of that clock: such a change counts as recent). 0: never re-read.
  std::int64_t racy_window_ns = 1'000'000'000;
  FollowSymlinks follow_symlinks = FollowSymlinks::no;
};

struct FileCacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t revalidations = 0;  // stats of a cached path
  std::uint64_t replaced = 0;       // revalidations (or descriptor checks) that found the file changed
  std::uint64_t rereads = 0;        // racy snapshots re-read and compared at revalidation
  std::uint64_t evictions = 0;
};

// One cached file or directory. Read-only for users; created and owned by the cache.
struct CachedFile {
  int fd = -1;  // open only for regular files not held in memory
  bool is_directory = false;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;  // seconds
  Slice body;              // the whole content, when size <= memory_limit
  std::string_view content_type;
  std::string_view etag() const noexcept { return {etag_text, etag_length}; }
  std::string_view last_modified() const noexcept { return {last_modified_text, kHttpDateLength}; }

  // ---- cache internals ----
  char etag_text[kMaxEtagLength] = {};
  std::uint8_t etag_length = 0;
  char last_modified_text[kHttpDateLength] = {};
  dev_t dev = 0;
  ino_t ino = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  std::int64_t validated_ns = 0;
  bool racy = false;  // a snapshot taken within racy_window of its file's last change
  std::uint32_t refs = 0;
  bool cached = false;  // still in the cache's map (else it dies with its last FileRef)
  CachedFile* lru_prev = nullptr;
  CachedFile* lru_next = nullptr;
  std::string key;
};

// A counted reference to a CachedFile: keeps its descriptor and body valid while a response uses them.
class FileRef {
 public:
  FileRef() = default;
  explicit FileRef(CachedFile* f) noexcept : f_(f) {
    if (f_) ++f_->refs;
  }
  FileRef(const FileRef& o) noexcept : FileRef(o.f_) {}
  FileRef(FileRef&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  FileRef& operator=(FileRef o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  ~FileRef() { reset(); }
  void reset() noexcept;

  explicit operator bool() const noexcept { return f_ != nullptr; }
  const CachedFile* operator->() const noexcept { return f_; }
  const CachedFile& operator*() const noexcept { return *f_; }
  const CachedFile* get() const noexcept { return f_; }

 private:
  CachedFile* f_ = nullptr;
};

class FileCache {
 public:
  // Opens the root directory. Errors: the open's errno (ENOENT, ENOTDIR, EACCES).
  static Result<std::unique_ptr<FileCache>> create(const std::string& root, FileCacheOptions options);
  ~FileCache();
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // The file or directory at `path` (normalised, starting with '/'). `now_ns` is the loop's monotonic time.
  // Errors: ENOENT/ENOTDIR (404), EACCES (403: unreadable, or not a regular file or directory), EXDEV/ELOOP
  // (403: a symlink leaving the root), others as the kernel said.
  Result<FileRef> open(std::string_view path, std::int64_t now_ns);

  // The entry names of the directory at `path` (no "." or ".."; directories get a trailing '/'), at most
  // kMaxListing of them. Not cached: for --dir-listing only. Opens with the same root rules as open().
  static constexpr std::size_t kMaxListing = 10000;
  Status list_directory(std::string_view path, std::vector<std::string>& names);

  const FileCacheStats& stats() const noexcept { return stats_; }
  std::size_t size() const noexcept { return map_.size(); }
  const FileCacheOptions& options() const noexcept { return options_; }
  bool uses_openat2() const noexcept { return use_openat2_; }

 private:
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  FileCache(int root_fd, std::string root_real, FileCacheOptions options) noexcept;
  Result<CachedFile*> load(std::string_view rel, std::int64_t now_ns);
  int open_beneath(const char* rel) noexcept;  // returns fd or -errno
  bool still_valid(CachedFile& f, std::int64_t now_ns) noexcept;
  bool same_bytes_on_disk(CachedFile& f) noexcept;
  // Whether a change at ctime_ns is within racy_window_ns of now (a ctime ahead of the coarse clock is); never with
  // a window of 0 (the file system's finer stamps made "now - ctime < 0" true there).
  bool changed_recently(std::int64_t ctime_ns) const noexcept;
  void insert(CachedFile* f);
  void remove(CachedFile* f) noexcept;
  void touch(CachedFile* f) noexcept;

  int root_fd_;
  std::string root_real_;  // for the fallback check
  FileCacheOptions options_;
  bool use_openat2_ = true;
  std::unordered_map<std::string, CachedFile*, KeyHash, std::equal_to<>> map_;
  CachedFile* lru_head_ = nullptr;  // most recently used
  CachedFile* lru_tail_ = nullptr;
  std::string scratch_;  // the relative path, NUL-terminated for the syscalls
  FileCacheStats stats_;
};

}  // namespace ringlet::http
