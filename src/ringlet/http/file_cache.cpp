// file_cache.cpp — open, stat, keep, revalidate and evict.
#include "ringlet/http/file_cache.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/http/mime.hpp"
#include "ringlet/base/log.hpp"

namespace ringlet::http {

namespace {

void destroy(CachedFile* f) noexcept {
  if (f->fd >= 0) ::close(f->fd);
  delete f;
}

std::int64_t ns_of(const timespec& t) noexcept {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}
std::int64_t mtime_ns_of(const struct stat& st) noexcept { return ns_of(st.st_mtim); }
std::int64_t ctime_ns_of(const struct stat& st) noexcept { return ns_of(st.st_ctim); }

// Does `st` still describe the file an entry was made from? Size, mtime and ctime: what a write in place changes.
bool same_content_stat(const CachedFile& f, const struct stat& st) noexcept {
  return mtime_ns_of(st) == f.mtime_ns && ctime_ns_of(st) == f.ctime_ns &&
         (f.is_directory || static_cast<std::uint64_t>(st.st_size) == f.size);
}

// The kernel stamps mtime and ctime from its coarse real-time clock; compare against the same clock.
std::int64_t coarse_wall_ns() noexcept {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return ns_of(t);
}

// Reads the whole file into one pooled buffer. False if the file turned out shorter (it is changing under us).
bool read_whole(int fd, std::size_t size, Slice& out) {
  Buffer* b = BufferPool::local().acquire(size);
  Slice s(b, 0, static_cast<std::uint32_t>(size));
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, s.mutable_data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  out = std::move(s);
  return true;
}

}  // namespace

void FileRef::reset() noexcept {
  if (f_ == nullptr) return;
  if (--f_->refs == 0 && !f_->cached) destroy(f_);
  f_ = nullptr;
}

Result<std::unique_ptr<FileCache>> FileCache::create(const std::string& root, FileCacheOptions options) {
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{errno};
  char real[PATH_MAX];
  if (::realpath(root.c_str(), real) == nullptr) {
    int err = errno;
    ::close(fd);
    return Error{err};
  }
  return std::unique_ptr<FileCache>(new FileCache(fd, real, options));
}

FileCache::FileCache(int root_fd, std::string root_real, FileCacheOptions options) noexcept
    : root_fd_(root_fd), root_real_(std::move(root_real)), options_(options) {
  if (options_.max_entries == 0) options_.max_entries = 1;
}

FileCache::~FileCache() {
  for (auto& [key, f] : map_) {
    f->cached = false;
    if (f->refs == 0) destroy(f);
  }
  ::close(root_fd_);
}

int FileCache::open_beneath(const char* rel) noexcept {
  constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  if (options_.follow_symlinks == FollowSymlinks::yes) {
    int fd = ::openat(root_fd_, rel, kFlags);
    return fd >= 0 ? fd : -errno;
  }
  if (use_openat2_) {
    open_how how{};
    how.flags = kFlags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, root_fd_, rel, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != ENOSYS && errno != EPERM) return -errno;
    // EPERM: some seccomp profiles refuse unknown syscalls with it. Fall back for good.
    log_warn("http: openat2 unavailable ({}): checking resolved paths instead", Error{errno}.message());
    use_openat2_ = false;
  }
  int fd = ::openat(root_fd_, rel, kFlags);
  if (fd < 0) return -errno;
  // Where did it really lead? The descriptor's /proc link names the resolved path.
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char real[PATH_MAX];
  ssize_t n = ::readlink(link, real, sizeof real - 1);
  if (n < 0) {
    ::close(fd);
    return -EACCES;
  }
  std::string_view resolved(real, static_cast<std::size_t>(n));
  std::string_view root(root_real_);
  bool inside = resolved == root ||
                (resolved.substr(0, root.size()) == root && (root == "/" || resolved[root.size()] == '/'));
  if (!inside) {
    ::close(fd);
    return -EXDEV;
  }
  return fd;
}

Result<CachedFile*> FileCache::load(std::string_view rel, std::int64_t now_ns) {
  scratch_.assign(rel.empty() ? std::string_view(".") : rel);
  int fd = open_beneath(scratch_.c_str());
  if (fd < 0) return Error{-fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Error{err};
  }
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Error{EACCES};
  }
  auto f = std::make_unique<CachedFile>();
  f->is_directory = S_ISDIR(st.st_mode);
  f->size = f->is_directory ? 0 : static_cast<std::uint64_t>(st.st_size);
  f->mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec);
  f->mtime_ns = mtime_ns_of(st);
  f->ctime_ns = ctime_ns_of(st);
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  f->validated_ns = now_ns;
  f->content_type = content_type_for(rel);
  f->etag_length = static_cast<std::uint8_t>(make_etag(f->mtime, f->size, f->etag_text));
  format_http_date(f->mtime, f->last_modified_text);
  f->key.assign(rel);
  if (f->is_directory) {
    ::close(fd);
  } else if (f->size <= options_.memory_limit) {
    // A snapshot: the bytes must be the ones the stat describes, so the stat is taken again after the read.
    struct stat after {};
    if ((f->size > 0 && !read_whole(fd, f->size, f->body)) || ::fstat(fd, &after) != 0 ||
        !same_content_stat(*f, after)) {
      ::close(fd);
      return Error{EAGAIN};  // changing while we read: let the client retry
    }
    ::close(fd);
    f->racy = changed_recently(f->ctime_ns);
  } else {
    f->fd = fd;
  }
  return f.release();
}

Status FileCache::list_directory(std::string_view path, std::vector<std::string>& names) {
  std::string_view rel = path.substr(path.empty() || path[0] != '/' ? 0 : 1);
  scratch_.assign(rel.empty() ? std::string_view(".") : rel);
  int fd = open_beneath(scratch_.c_str());
  if (fd < 0) return Error{-fd};
  DIR* dir = ::fdopendir(fd);  // owns fd from here
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return Error{err};
  }
  while (names.size() < kMaxListing) {
    dirent* e = ::readdir(dir);
    if (e == nullptr) break;
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
    if (e->d_type == DT_DIR) names.back().push_back('/');
  }
  ::closedir(dir);
  return {};
}

bool FileCache::still_valid(CachedFile& f, std::int64_t now_ns) noexcept {
  if (f.fd >= 0) {
    // sendfile reads the inode at send time: its stat must still be the one our validators came from.
    struct stat st {};
    if (::fstat(f.fd, &st) != 0 || !same_content_stat(f, st)) return false;
  }
  if (now_ns - f.validated_ns < options_.revalidate_after_ns) return true;
  ++stats_.revalidations;
  scratch_.assign(f.key.empty() ? std::string_view(".") : std::string_view(f.key));
  struct stat st {};
  // By path (not fstat): a file replaced by rename keeps the old inode behind our descriptor. A symlink that now
  // points elsewhere changes dev/ino and sends us back through open_beneath, which enforces the root.
  if (::fstatat(root_fd_, scratch_.c_str(), &st, 0) != 0) return false;
  if (st.st_dev != f.dev || st.st_ino != f.ino || !same_content_stat(f, st)) return false;
  if (f.racy) {
    if (!same_bytes_on_disk(f)) return false;
    f.racy = changed_recently(f.ctime_ns);
  }
  f.validated_ns = now_ns;
  return true;
}

bool FileCache::changed_recently(std::int64_t ctime_ns) const noexcept {
  return options_.racy_window_ns > 0 && coarse_wall_ns() - ctime_ns < options_.racy_window_ns;
}

// A racy snapshot: a write in the same timestamp tick as the change we saw leaves every stat field alone, so
// compare the bytes themselves (at most memory_limit of them, once per revalidation of a recently changed file).
bool FileCache::same_bytes_on_disk(CachedFile& f) noexcept {
  ++stats_.rereads;
  int fd = open_beneath(scratch_.c_str());
  if (fd < 0) return false;
  Slice now;
  bool same = f.size == 0 || (read_whole(fd, f.size, now) && now.view() == f.body.view());
  char extra;
  if (same && ::pread(fd, &extra, 1, static_cast<off_t>(f.size)) != 0) same = false;  // it grew meanwhile
  ::close(fd);
  return same;
}

Result<FileRef> FileCache::open(std::string_view path, std::int64_t now_ns) {
  std::string_view rel = path.substr(path.empty() || path[0] != '/' ? 0 : 1);
  auto it = map_.find(rel);
  if (it != map_.end()) {
    CachedFile* f = it->second;
    if (still_valid(*f, now_ns)) {
      ++stats_.hits;
      touch(f);
      return FileRef(f);
    }
    ++stats_.replaced;
    remove(f);
  }
  ++stats_.misses;
  Result<CachedFile*> loaded = load(rel, now_ns);
  if (!loaded) return loaded.error();
  insert(*loaded);
  return FileRef(*loaded);
}

void FileCache::insert(CachedFile* f) {
  while (map_.size() >= options_.max_entries && lru_tail_ != nullptr) {
    ++stats_.evictions;
    remove(lru_tail_);
  }
  f->cached = true;
  map_.emplace(f->key, f);
  f->lru_next = lru_head_;
  if (lru_head_) lru_head_->lru_prev = f;
  lru_head_ = f;
  if (!lru_tail_) lru_tail_ = f;
}

void FileCache::remove(CachedFile* f) noexcept {
  map_.erase(f->key);
  if (f->lru_prev) f->lru_prev->lru_next = f->lru_next;
  if (f->lru_next) f->lru_next->lru_prev = f->lru_prev;
  if (lru_head_ == f) lru_head_ = f->lru_next;
  if (lru_tail_ == f) lru_tail_ = f->lru_prev;
  f->lru_prev = f->lru_next = nullptr;
  f->cached = false;
  if (f->refs == 0) destroy(f);
}

void FileCache::touch(CachedFile* f) noexcept {
  if (lru_head_ == f) return;
  f->lru_prev->lru_next = f->lru_next;
  if (f->lru_next) {
    f->lru_next->lru_prev = f->lru_prev;
  } else {
    lru_tail_ = f->lru_prev;
  }
  f->lru_prev = nullptr;
  f->lru_next = lru_head_;
  lru_head_->lru_prev = f;
  lru_head_ = f;
}

}  // namespace ringlet::http
