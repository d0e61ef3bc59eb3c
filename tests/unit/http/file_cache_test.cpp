#include "ringlet/http/file_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>
#include <fstream>
#include <string>

#include "ringlet/buf/buffer.hpp"

namespace ringlet::http {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

class FileCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringlet-file-cache-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    outside_ = root_ + "-outside";
    ::mkdir(outside_.c_str(), 0755);
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "' '" + outside_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    EXPECT_EQ(BufferPool::local().outstanding(), 0u);
  }
  void write(const std::string& rel, const std::string& content, const std::string& base = "") {
    std::ofstream(( base.empty() ? root_ : base) + "/" + rel, std::ios::binary | std::ios::trunc) << content;
  }
  // Overwrites the bytes of an existing file without replacing it (same inode), as an editor saving in place does.
  void rewrite_in_place(const std::string& rel, const std::string& content) {
    int fd = ::open((root_ + "/" + rel).c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, content.data(), content.size(), 0), static_cast<ssize_t>(content.size()));
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(content.size())), 0);
    ::close(fd);
  }
  // Sets the mtime explicitly, so no verdict depends on how fast the test runs.
  void set_mtime(const std::string& rel, std::int64_t seconds) {
    timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(seconds), 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/" + rel).c_str(), times, 0), 0);
  }
  std::int64_t ctime_ns(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::stat((root_ + "/" + rel).c_str(), &st), 0);
    return static_cast<std::int64_t>(st.st_ctim.tv_sec) * kSecond + st.st_ctim.tv_nsec;
  }
  std::unique_ptr<FileCache> make(FileCacheOptions options = {}) {
    auto c = FileCache::create(root_, options);
    EXPECT_TRUE(c.ok());
    return c ? std::move(*c) : nullptr;
  }
  std::string root_;
  std::string outside_;
};

TEST_F(FileCacheTest, a_hit_costs_no_open) {
  write("a.txt", "hello");
  auto cache = make();
  auto first = cache->open("/a.txt", 0);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)->size, 5u);
  EXPECT_EQ((*first)->body.view(), "hello");  // small: held in memory, descriptor closed
  EXPECT_EQ((*first)->fd, -1);
  EXPECT_EQ((*first)->content_type, "text/plain");
  EXPECT_EQ((*first)->etag().front(), '"');
  auto second = cache->open("/a.txt", kSecond / 2);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->get(), first->get());
  EXPECT_EQ(cache->stats().hits, 1u);
  EXPECT_EQ(cache->stats().misses, 1u);
  EXPECT_EQ(cache->stats().revalidations, 0u);
}

TEST_F(FileCacheTest, large_files_keep_a_descriptor) {
  write("big.bin", std::string(100 * 1024, 'x'));
  auto cache = make();
  auto f = cache->open("/big.bin", 0);
  ASSERT_TRUE(f.ok());
  EXPECT_GE((*f)->fd, 0);
  EXPECT_TRUE((*f)->body.empty());
  EXPECT_EQ((*f)->size, 100u * 1024);
}

TEST_F(FileCacheTest, a_changed_file_is_noticed_after_the_revalidation_interval) {
  write("a.txt", "hello");
  auto cache = make();
  auto before = cache->open("/a.txt", 0);
  ASSERT_TRUE(before.ok());
  std::string old_etag((*before)->etag());
  write("a.txt", "hello, longer");
  auto stale = cache->open("/a.txt", kSecond / 2);  // within the interval: trusted
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ((*stale)->body.view(), "hello");
  auto fresh = cache->open("/a.txt", 2 * kSecond);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->body.view(), "hello, longer");
  EXPECT_NE(std::string((*fresh)->etag()), old_etag);
  EXPECT_EQ(cache->stats().replaced, 1u);
  // The response that still holds the old entry keeps its bytes.
  EXPECT_EQ((*before)->body.view(), "hello");
}

FileCacheOptions sendfile_only() {
  FileCacheOptions o;
  o.memory_limit = 0;
  return o;
}

TEST_F(FileCacheTest, a_sendfile_entry_rewritten_in_place_gets_new_validators_on_the_next_request) {
  write("a.bin", "aaaa");
  set_mtime("a.bin", 1'600'000'000);
  auto cache = make(sendfile_only());
  auto before = cache->open("/a.bin", 0);
  ASSERT_TRUE(before.ok());
  ASSERT_GE((*before)->fd, 0);
  std::string old_etag((*before)->etag());
  rewrite_in_place("a.bin", "bbbb");
  set_mtime("a.bin", 1'600'000'100);
  auto after = cache->open("/a.bin", kSecond / 2);  // within the revalidation interval: the descriptor check sees it
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->get(), before->get());
  EXPECT_EQ((*after)->mtime, 1'600'000'100);
  EXPECT_NE(std::string((*after)->etag()), old_etag);
  EXPECT_NE(std::string((*after)->last_modified()), std::string((*before)->last_modified()));
  EXPECT_EQ(cache->stats().replaced, 1u);
  EXPECT_EQ(cache->stats().revalidations, 0u);
}

TEST_F(FileCacheTest, a_sendfile_entry_whose_size_changed_in_place_is_reopened) {
  write("a.bin", "aaaa");
  set_mtime("a.bin", 1'600'000'000);
  auto cache = make(sendfile_only());
  auto before = cache->open("/a.bin", 0);
  ASSERT_TRUE(before.ok());
  rewrite_in_place("a.bin", "aaaaaaaa");
  set_mtime("a.bin", 1'600'000'000);  // the same mtime: size alone tells
  auto after = cache->open("/a.bin", 0);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->size, 8u);
  EXPECT_NE(std::string((*after)->etag()), std::string((*before)->etag()));
}

TEST_F(FileCacheTest, a_rewrite_that_puts_the_old_mtime_back_is_caught_by_ctime) {
  write("a.bin", "aaaa");
  set_mtime("a.bin", 1'600'000'000);
  auto cache = make(sendfile_only());
  auto before = cache->open("/a.bin", 0);
  ASSERT_TRUE(before.ok());
  const std::int64_t seen_ctime = (*before)->ctime_ns;
  // Same size, same mtime (as touch -r or rsync -t leave it). ctime moves with the kernel's clock tick: wait for
  // that state instead of assuming the tick passed (bounded only against a hang).
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    rewrite_in_place("a.bin", "bbbb");
    set_mtime("a.bin", 1'600'000'000);
    if (ctime_ns("a.bin") != seen_ctime) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } while (std::chrono::steady_clock::now() < give_up);
  ASSERT_NE(ctime_ns("a.bin"), seen_ctime);
  auto after = cache->open("/a.bin", 0);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->get(), before->get());
  EXPECT_EQ(cache->stats().replaced, 1u);
  // nginx's ETag format (mtime seconds and size) cannot tell these two apart: documented in file_cache.hpp.
  EXPECT_EQ(std::string((*after)->etag()), std::string((*before)->etag()));
}

TEST_F(FileCacheTest, a_memory_snapshot_keeps_validators_and_bytes_together) {
  write("a.txt", "hello");
  set_mtime("a.txt", 1'600'000'000);
  auto cache = make();
  auto before = cache->open("/a.txt", 0);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ((*before)->fd, -1);
  rewrite_in_place("a.txt", "jello");
  set_mtime("a.txt", 1'600'000'100);
  auto within = cache->open("/a.txt", kSecond / 2);  // the snapshot: old bytes with their own validators
  ASSERT_TRUE(within.ok());
  EXPECT_EQ((*within)->body.view(), "hello");
  EXPECT_EQ((*within)->mtime, 1'600'000'000);
  auto later = cache->open("/a.txt", 2 * kSecond);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ((*later)->body.view(), "jello");
  EXPECT_EQ((*later)->mtime, 1'600'000'100);
  EXPECT_NE(std::string((*later)->etag()), std::string((*before)->etag()));
}

TEST_F(FileCacheTest, a_racy_snapshot_is_compared_with_the_disk_at_revalidation) {
  write("a.txt", "hello");
  FileCacheOptions options;
  options.racy_window_ns = 3600 * kSecond;  // the file just written is certainly "racy"
  auto cache = make(options);
  auto first = cache->open("/a.txt", 0);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE((*first)->racy);
  auto second = cache->open("/a.txt", 2 * kSecond);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->get(), first->get());  // same bytes: kept
  EXPECT_EQ(cache->stats().rereads, 1u);
  EXPECT_EQ(cache->stats().replaced, 0u);
  options.racy_window_ns = 0;
  auto calm = make(options);
  ASSERT_TRUE(calm->open("/a.txt", 0).ok());
  ASSERT_TRUE(calm->open("/a.txt", 2 * kSecond).ok());
  EXPECT_EQ(calm->stats().rereads, 0u);
}

TEST_F(FileCacheTest, an_unchanged_file_is_revalidated_with_one_stat) {
  write("a.txt", "hello");
  auto cache = make();
  ASSERT_TRUE(cache->open("/a.txt", 0).ok());
  ASSERT_TRUE(cache->open("/a.txt", 2 * kSecond).ok());
  EXPECT_EQ(cache->stats().revalidations, 1u);
  EXPECT_EQ(cache->stats().replaced, 0u);
  EXPECT_EQ(cache->stats().misses, 1u);
}

TEST_F(FileCacheTest, a_deleted_file_becomes_not_found) {
  write("a.txt", "hello");
  auto cache = make();
  ASSERT_TRUE(cache->open("/a.txt", 0).ok());
  ::unlink((root_ + "/a.txt").c_str());
  auto gone = cache->open("/a.txt", 2 * kSecond);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ENOENT);
}

TEST_F(FileCacheTest, is_bounded_and_evicts_the_least_recently_used) {
  for (const char* n : {"a", "b", "c"}) write(n, n);
  FileCacheOptions options;
  options.max_entries = 2;
  auto cache = make(options);
  auto a = cache->open("/a", 0);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(cache->open("/b", 0).ok());
  ASSERT_TRUE(cache->open("/a", 0).ok());  // a is now the most recent
  ASSERT_TRUE(cache->open("/c", 0).ok());  // evicts b
  EXPECT_EQ(cache->size(), 2u);
  EXPECT_EQ(cache->stats().evictions, 1u);
  std::uint64_t misses = cache->stats().misses;
  ASSERT_TRUE(cache->open("/a", 0).ok());
  EXPECT_EQ(cache->stats().misses, misses);  // still cached
  ASSERT_TRUE(cache->open("/b", 0).ok());
  EXPECT_EQ(cache->stats().misses, misses + 1);  // was evicted
  EXPECT_EQ((*a)->body.view(), "a");              // a held reference outlives eviction
}

TEST_F(FileCacheTest, directories_and_missing_paths) {
  ::mkdir((root_ + "/dir").c_str(), 0755);
  auto cache = make();
  auto dir = cache->open("/dir", 0);
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE((*dir)->is_directory);
  auto root = cache->open("/", 0);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE((*root)->is_directory);
  auto missing = cache->open("/nope", 0);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ENOENT);
  std::vector<std::string> names;
  write("dir/x.txt", "x");
  ::mkdir((root_ + "/dir/sub").c_str(), 0755);
  ASSERT_TRUE(cache->list_directory("/dir", names).ok());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"sub/", "x.txt"}));
}

TEST_F(FileCacheTest, symlinks_leaving_the_root_are_refused_unless_allowed) {
  write("secret", "outside", outside_);
  write("inside.txt", "inside");
  ASSERT_EQ(::symlink((outside_ + "/secret").c_str(), (root_ + "/abs-link").c_str()), 0);
  std::string relative = "../" + outside_.substr(outside_.rfind('/') + 1) + "/secret";
  ASSERT_EQ(::symlink(relative.c_str(), (root_ + "/rel-link").c_str()), 0);
  ASSERT_EQ(::symlink("inside.txt", (root_ + "/good-link").c_str()), 0);
  auto cache = make();
  for (const char* p : {"/abs-link", "/rel-link"}) {
    auto r = cache->open(p, 0);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_TRUE(r.error().code == EXDEV || r.error().code == ELOOP) << p << ": " << r.error().message();
  }
  auto good = cache->open("/good-link", 0);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ((*good)->body.view(), "inside");

  FileCacheOptions follow;
  follow.follow_symlinks = FollowSymlinks::yes;
  auto lenient = make(follow);
  auto r = lenient->open("/abs-link", 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->body.view(), "outside");
}

TEST_F(FileCacheTest, special_files_are_refused_without_blocking) {
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  auto cache = make();
  auto r = cache->open("/fifo", 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EACCES);
}

}  // namespace
}  // namespace ringlet::http
