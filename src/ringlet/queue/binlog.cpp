// binlog.cpp — segment files, records, replay and compaction (the format and the rules are in binlog.hpp).
#include "ringlet/queue/binlog.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "ringlet/base/log.hpp"
#include "ringlet/proto/beanstalk/request_parser.hpp"
#include "ringlet/queue/crc32c.hpp"

namespace ringlet::queue {

namespace {

constexpr std::string_view kMagic = "RLQBINLG";
constexpr std::size_t kHeaderSize = 32;
constexpr std::size_t kRecordHead = 8;  // length + checksum
constexpr std::uint8_t kKindJob = 1;
constexpr std::uint8_t kKindDelete = 2;
constexpr std::string_view kPrefix = "binlog.";

template <class T>
void put_le(std::string& out, T v) {
  char b[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xFF);
  out.append(b, sizeof(T));
}

// Reads little-endian fields from a payload; any read past the end sets `bad`.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  template <class T>
  T get() {
    if (s_.size() - pos_ < sizeof(T) || bad_) {
      bad_ = true;
      return T{};
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v |= std::uint64_t{static_cast<unsigned char>(s_[pos_ + i])} << (8 * i);
    pos_ += sizeof(T);
    return static_cast<T>(v);
  }
  std::string_view bytes(std::size_t n) {
    if (s_.size() - pos_ < n || bad_) {
      bad_ = true;
      return {};
    }
    std::string_view r = s_.substr(pos_, n);
    pos_ += n;
    return r;
  }
  bool ok() const noexcept { return !bad_ && pos_ == s_.size(); }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
  bool bad_ = false;
};

Status errno_status() { return Error{errno}; }

bool write_all(int fd, const char* p, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return true;
}

bool read_file(int fd, std::string& out) {
  out.clear();
  struct stat st{};
  if (::fstat(fd, &st) != 0) return false;
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t r = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

// A segment file whose header never reached the disk: shorter than a header, or a header of zeros.
bool never_written(std::string_view data) {
  const std::string_view head = data.substr(0, std::min(data.size(), kHeaderSize));
  return data.size() < kHeaderSize || head.find_first_not_of('\0') == std::string_view::npos;
}

std::size_t job_record_bytes(std::size_t tube, std::size_t body) {
  return kRecordHead + 1 + 8 + 1 + 4 + 8 * 4 + 4 * 5 + 1 + tube + 4 + body;
}

}  // namespace

bool parse_fsync_mode(std::string_view text, FsyncMode& mode, std::int64_t& interval_ns) {
  if (text == "always") {
    mode = FsyncMode::always;
    return true;
  }
  if (text == "never") {
    mode = FsyncMode::never;
    return true;
  }
  std::uint64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc{} || end != text.data() + text.size() || ms > 86'400'000) return false;
  if (ms == 0) {
    mode = FsyncMode::always;  // beanstalkd's -f 0: a sync per write
    return true;
  }
  mode = FsyncMode::interval;
  interval_ns = static_cast<std::int64_t>(ms) * 1'000'000;
  return true;
}

Binlog::Binlog(std::string dir, const BinlogOptions& options, QueueState& state, int lock_fd)
    : dir_(std::move(dir)), options_(options), state_(&state), lock_fd_(lock_fd) {
  // A segment always holds several of the largest records plus the headroom.
  const std::uint64_t floor = 4 * job_record_bytes(beanstalk::kMaxTubeName, options_.max_job_size) + kHeadroomBytes + kHeaderSize;
  options_.segment_size = std::max(options_.segment_size, floor);
}

Binlog::~Binlog() {
  for (auto& [seq, s] : segments_) {
    if (s.fd < 0) continue;
    if (seq == current_ && s.capacity > s.size) (void)::ftruncate(s.fd, static_cast<off_t>(s.size));
    ::close(s.fd);
  }
  for (int fd : retired_) ::close(fd);
  for (const Trim& t : trims_) t.run();
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::vector<int> Binlog::take_retired() {
  std::vector<int> fds;
  fds.swap(retired_);
  return fds;
}

std::string Binlog::path_of(std::uint64_t seq) const {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, seq);
  std::string name(digits, end);
  return dir_ + "/" + std::string(kPrefix) + std::string(20 - std::min<std::size_t>(20, name.size()), '0') + name;
}

Result<std::unique_ptr<Binlog>> Binlog::open(const std::string& dir, const BinlogOptions& options, QueueState& state,
                                             std::int64_t mono_now, std::int64_t wall_now, ReplayReport& report) {
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) return errno_status().error();
  const std::string lock_path = dir + "/lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd < 0) return errno_status().error();
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    Error e{errno};
    ::close(lock_fd);
    if (e.code == EWOULDBLOCK) log_error("queue: the binlog directory {} is in use by another server", dir);
    return e;
  }
  auto log = std::unique_ptr<Binlog>(new Binlog(dir, options, state, lock_fd));
  // Synced with the batch after each segment start, so that the new file's name survives a crash too.
  log->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log->dir_fd_ < 0) return errno_status().error();
  Status replayed = log->replay(mono_now, wall_now, report);
  if (!replayed) return replayed.error();
  Status started = log->start_segment(/*or_unallocated=*/true);
  if (!started) return started.error();
  state.set_journal(log.get());
  return log;
}

Status Binlog::replay(std::int64_t mono_now, std::int64_t wall_now, ReplayReport& report) {
  wall_minus_mono_ = wall_now - mono_now;
  std::vector<std::uint64_t> seqs;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return errno_status();
  while (dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name.substr(0, kPrefix.size()) != kPrefix) continue;
    std::string_view digits = name.substr(kPrefix.size());
    std::uint64_t seq = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
    if (ec == std::errc{} && end == digits.data() + digits.size() && seq > 0) seqs.push_back(seq);
  }
  ::closedir(d);
  std::sort(seqs.begin(), seqs.end());
  // New segments go above every name in the directory, even one that cannot be read or has a bad header.
  if (!seqs.empty()) highest_seq_ = seqs.back();
  std::string data;
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint32_t>> latest;  // id -> (segment, bytes)
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const std::uint64_t seq = seqs[i];
    const bool last = i + 1 == seqs.size();
    const std::string path = path_of(seq);
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 || !read_file(fd, data)) {
      report.problems.push_back(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
      if (fd >= 0) ::close(fd);
      continue;
    }
    if (last && never_written(data)) {
      // Started, then a crash before the sync that would have made its header durable: nothing in it was
      // acknowledged (start_segment), so it goes, and the new segment takes its place.
      report.problems.push_back(fmt::format("{}: a segment whose start was cut short (no header): removed", path));
      ::close(fd);
      ::unlink(path.c_str());
      highest_seq_ = i > 0 ? seqs[i - 1] : 0;
      break;
    }
    Reader head(std::string_view(data).substr(0, std::min(data.size(), kHeaderSize)));
    std::string_view magic = head.bytes(kMagic.size());
    const auto version = head.get<std::uint32_t>();
    const auto header_size = head.get<std::uint32_t>();
    (void)head.get<std::uint64_t>();
    const auto next_id = head.get<std::uint64_t>();
    if (magic != kMagic || header_size != kHeaderSize) {
      report.problems.push_back(fmt::format("{}: not a ringlet binlog segment (bad header): skipped", path));
      ::close(fd);
      continue;
    }
    if (version != kBinlogVersion) {
      ::close(fd);
      report.problems.push_back(fmt::format("{}: format version {} (this server reads {})", path, version,
                                            kBinlogVersion));
      return Error{EPROTO};
    }
    state_->set_next_id(next_id);
    ++report.segments;
    Segment seg;
    seg.fd = fd;
    const std::size_t problems_before = report.problems.size();
    std::uint64_t pos = kHeaderSize;
    while (pos + kRecordHead <= data.size()) {
      Reader rh(std::string_view(data).substr(pos, kRecordHead));
      const auto len = rh.get<std::uint32_t>();
      const auto crc = rh.get<std::uint32_t>();
      if (len == 0 && crc == 0) break;  // the preallocated, never written rest
      if (len > data.size() - pos - kRecordHead) {
        report.problems.push_back(fmt::format("{}: record at offset {} is cut short", path, pos));
        break;
      }
      std::string_view payload = std::string_view(data).substr(pos + kRecordHead, len);
      if (crc32c(payload) != crc) {
        report.problems.push_back(fmt::format("{}: record at offset {} fails its checksum", path, pos));
        break;
      }
      Reader r(payload);
      const auto kind = r.get<std::uint8_t>();
      const auto id = r.get<std::uint64_t>();
      const std::uint32_t bytes = static_cast<std::uint32_t>(kRecordHead + len);
      if (kind == kKindDelete && r.ok()) {
        state_->forget(id);
        latest.erase(id);
      } else if (kind == kKindJob) {
        const auto st = r.get<std::uint8_t>();
        const auto pri = r.get<std::uint32_t>();
        const auto delay = r.get<std::int64_t>();
        const auto ttr = r.get<std::int64_t>();
        const auto created = r.get<std::int64_t>();
        const auto deadline = r.get<std::int64_t>();
        std::uint32_t counts[5];
        for (auto& c : counts) c = r.get<std::uint32_t>();
        std::string_view tube = r.bytes(r.get<std::uint8_t>());
        std::string_view body = r.bytes(r.get<std::uint32_t>());
        if (!r.ok() || st > static_cast<std::uint8_t>(JobState::buried) || !beanstalk::valid_tube_name(tube)) {
          report.problems.push_back(fmt::format("{}: record at offset {} is malformed", path, pos));
          break;
        }
        Job& j = state_->restore(id, tube, pri, static_cast<JobState>(st), delay, ttr, created - wall_minus_mono_,
                                 std::max(deadline - wall_minus_mono_, mono_now), std::string(body));
        j.reserves = counts[0];
        j.timeouts = counts[1];
        j.releases = counts[2];
        j.buries = counts[3];
        j.kicks = counts[4];
        latest[id] = {seq, bytes};
      } else {
        report.problems.push_back(fmt::format("{}: record at offset {} has an unknown kind", path, pos));
        break;
      }
      ++report.records;
      pos += bytes;
    }
    const bool damaged = problems_before != report.problems.size();
    if (damaged) report.problems.back() += last ? fmt::format(": cut at offset {}", pos) : ": the rest is skipped";
    // Trim to the records: drops a torn tail of the last segment and any preallocated rest. A damaged earlier
    // segment is left as it is, for a human to look at.
    if ((last || !damaged) && ::ftruncate(fd, static_cast<off_t>(pos)) != 0) {
      report.problems.push_back(fmt::format("{}: cannot truncate: {}", path, std::strerror(errno)));
    }
    seg.size = pos;
    seg.capacity = pos;
    segments_[seq] = seg;
    current_ = seq;
  }
  for (auto& [id, where] : latest) {
    Job* j = state_->peek(id);
    if (j == nullptr) continue;
    j->segment = where.first;
    j->record_bytes = where.second;
    segments_[where.first].live += where.second;
  }
  report.jobs = state_->job_count();
  state_->settle(mono_now);
  return {};
}

// A segment roll costs the loop no wait on the disk: the header is written into the page cache here, and the
// header, the new file's size and the directory entry that names it become durable with the first sync after it
// (write_pending returns the segment's and the directory's descriptors: with --fsync always the batch sync that
// also carries the first records in the segment). Until fsync9 the loop did a header fdatasync and a directory
// fsync here, 0.2-5 ms each on the project's VM, every connection stalled meanwhile. Why the order is still safe:
// no record in the new segment is acknowledged before a sync that covers its file (header included: fdatasync
// writes every dirty page) and the directory has finished; a crash before that leaves either no file or a file
// whose header may be zeros, which replay removes when it is the last segment (nothing in it was acknowledged).
Status Binlog::start_segment(bool or_unallocated) {
  const std::uint64_t seq = std::max(current_, highest_seq_) + 1;
  const std::string path = path_of(seq);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) return errno_status();
  std::uint64_t capacity = options_.segment_size;
  bool preallocated = true;
  int r = ::posix_fallocate(fd, 0, static_cast<off_t>(capacity));
  if (r == ENOSPC && !or_unallocated) {
    ::close(fd);
    ::unlink(path.c_str());
    return Error{ENOSPC};
  }
  if (r == ENOSPC) {
    (void)::ftruncate(fd, 0);  // give back what the failed preallocation took
    log_warn("queue: binlog: the disk is full: puts answer OUT_OF_MEMORY until space is freed");
    preallocated = false;
  }
  if (r != 0) capacity = UINT64_MAX;  // no preallocation here: writes may fail when the disk fills
  std::string header;
  header.append(kMagic);
  put_le<std::uint32_t>(header, kBinlogVersion);
  put_le<std::uint32_t>(header, kHeaderSize);
  put_le<std::uint64_t>(header, seq);
  put_le<std::uint64_t>(header, state_->next_id());
  if (!write_all(fd, header.data(), header.size(), 0)) {
    Error e{errno};
    ::close(fd);
    ::unlink(path.c_str());
    return e;
  }
  Segment seg;
  seg.fd = fd;
  seg.size = kHeaderSize;
  seg.capacity = capacity;
  seg.preallocated = preallocated;
  segments_[seq] = seg;
  current_ = seq;
  highest_seq_ = seq;
  unsynced_starts_.push_back(seq);
  return {};
}

bool Binlog::room_for_put(std::size_t tube_bytes, std::size_t body_bytes) {
  const std::uint64_t need = job_record_bytes(tube_bytes, body_bytes) + kHeadroomBytes;
  Segment& cur = segments_[current_];
  if (cur.preallocated && cur.capacity - cur.size >= need) return true;
  // Roll over now, so the put's record lands in a segment that has room.
  Status started = start_segment();
  if (!started) {
    if (!failed_) log_warn("queue: binlog: cannot start a new segment in {}: {}", dir_, started.error().message());
    return false;
  }
  return true;
}

void Binlog::encode_job(const Job& j, std::string& out) const {
  put_le<std::uint8_t>(out, kKindJob);
  put_le<std::uint64_t>(out, j.id);
  put_le<std::uint8_t>(out, static_cast<std::uint8_t>(j.state));
  put_le<std::uint32_t>(out, j.priority);
  put_le<std::int64_t>(out, j.delay_ns);
  put_le<std::int64_t>(out, j.ttr_ns);
  put_le<std::int64_t>(out, j.created_ns + wall_minus_mono_);
  put_le<std::int64_t>(out, j.state == JobState::delayed ? j.deadline_ns + wall_minus_mono_ : 0);
  for (std::uint32_t c : {j.reserves, j.timeouts, j.releases, j.buries, j.kicks}) put_le<std::uint32_t>(out, c);
  put_le<std::uint8_t>(out, static_cast<std::uint8_t>(j.tube->name.size()));
  out.append(j.tube->name);
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(j.body.size()));
  out.append(j.body);
}

std::string* Binlog::begin_record(std::uint64_t bytes, Job* job) {
  Segment* cur = &segments_[current_];
  if (cur->capacity - cur->size < bytes) {
    // Only a put checks for room first; anything else may use the headroom, and past it a new segment.
    Status started = start_segment();
    if (!started) {
      log_error("queue: binlog: disk full, a record of job {} is lost: {}", job ? job->id : 0,
                started.error().message());
      failed_ = true;
      return nullptr;
    }
    cur = &segments_[current_];
  }
  if (pending_.empty() || pending_.back().seq != current_ ||
      pending_.back().offset + pending_.back().bytes.size() != cur->size) {
    pending_.push_back({current_, cur->size, {}});
    if (!spare_.empty()) {  // a buffer of an earlier batch, with its capacity: no malloc, no page faults
      pending_.back().bytes = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  cur->size += bytes;
  if (job != nullptr) {
    if (job->segment != 0) {
      auto old = segments_.find(job->segment);
      if (old != segments_.end()) old->second.live -= job->record_bytes;
    }
    job->segment = current_;
    job->record_bytes = static_cast<std::uint32_t>(bytes);
    cur->live += bytes;
  }
  ++appended_seq_;
  std::string& out = pending_.back().bytes;
  out.append(kRecordHead, '\0');  // length and checksum, filled in by end_record
  return &out;
}

void Binlog::end_record(std::string& out, std::size_t head, std::uint64_t bytes) {
  const std::size_t len = out.size() - head - kRecordHead;
  RINGLET_ASSERT(kRecordHead + len == bytes);  // begin_record counted it in the segment's size and live bytes
  const std::uint32_t crc = crc32c(std::string_view(out).substr(head + kRecordHead));
  for (std::size_t i = 0; i < 4; ++i) {
    out[head + i] = static_cast<char>((len >> (8 * i)) & 0xFF);
    out[head + 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  }
}

void Binlog::job_written(Job& job) {
  // Encoded in place, at the end of the batch: the body is copied once, from the job into the batch.
  const std::uint64_t bytes = job_record_bytes(job.tube->name.size(), job.body.size());
  std::string* out = begin_record(bytes, &job);
  if (out == nullptr) return;
  const std::size_t head = out->size() - kRecordHead;
  encode_job(job, *out);
  end_record(*out, head, bytes);
}

void Binlog::job_deleted(Job& job) {
  if (job.segment != 0) {
    auto old = segments_.find(job.segment);
    if (old != segments_.end()) old->second.live -= job.record_bytes;
    job.segment = 0;
  }
  constexpr std::uint64_t bytes = kRecordHead + 1 + 8;
  std::string* out = begin_record(bytes, nullptr);
  if (out == nullptr) return;
  const std::size_t head = out->size() - kRecordHead;
  put_le<std::uint8_t>(*out, kKindDelete);
  put_le<std::uint64_t>(*out, job.id);
  end_record(*out, head, bytes);
}

Result<std::vector<int>> Binlog::write_pending(std::int64_t mono_now, std::int64_t wall_now) {
  wall_minus_mono_ = wall_now - mono_now;
  std::vector<int> fds;
  const std::uint64_t batch_seq = appended_seq_;
  for (Chunk& c : pending_) {
    auto it = segments_.find(c.seq);
    if (it == segments_.end() || !write_all(it->second.fd, c.bytes.data(), c.bytes.size(), c.offset)) {
      Error e{it == segments_.end() ? EBADF : errno};
      log_error("queue: binlog: writing {}: {}", path_of(c.seq), e.message());
      failed_ = true;
      pending_.clear();
      return e;
    }
    if (std::find(fds.begin(), fds.end(), it->second.fd) == fds.end()) fds.push_back(it->second.fd);
  }
  for (Chunk& c : pending_) {
    c.bytes.clear();
    spare_.push_back(std::move(c.bytes));
  }
  pending_.clear();
  written_seq_ = batch_seq;
  // Segments started since the last write: their headers and names become durable with this batch's sync.
  for (std::uint64_t seq : unsynced_starts_) {
    auto it = segments_.find(seq);
    if (it != segments_.end() && std::find(fds.begin(), fds.end(), it->second.fd) == fds.end()) {
      fds.push_back(it->second.fd);
    }
  }
  if (!unsynced_starts_.empty() && dir_fd_ >= 0) fds.push_back(dir_fd_);
  unsynced_starts_.clear();
  // Segments that are no longer current give back their preallocated tail. The ftruncate frees blocks (0.2-5 ms on
  // the project's VM), so it is left to the caller on a descriptor of its own (take_trims).
  for (auto& [seq, s] : segments_) {
    if (seq != current_ && s.capacity > s.size && s.capacity != UINT64_MAX) {
      const int fd = ::fcntl(s.fd, F_DUPFD_CLOEXEC, 0);
      if (fd >= 0) {
        trims_.push_back({fd, s.size});
        s.capacity = s.size;
      } else if (::ftruncate(s.fd, static_cast<off_t>(s.size)) == 0) {
        s.capacity = s.size;
      }
    }
  }
  // The copies of the segments compacted last pass are in this batch: they may go once it is synced.
  for (std::uint64_t seq : compacted_) removable_.push_back({seq, batch_seq});
  compacted_.clear();
  maybe_compact();
  return fds;
}

std::vector<int> Binlog::all_fds() const {
  std::vector<int> fds;
  for (const auto& [seq, s] : segments_) fds.push_back(s.fd);
  if (dir_fd_ >= 0) fds.push_back(dir_fd_);  // the names of segments started since the last sync
  return fds;
}

std::vector<Binlog::Trim> Binlog::take_trims() {
  std::vector<Trim> trims;
  trims.swap(trims_);
  return trims;
}

void Binlog::Trim::run() const noexcept {
  (void)::ftruncate(fd, static_cast<off_t>(size));
  ::close(fd);
}

void Binlog::maybe_compact() {
  BinlogStats s = stats();
  if (s.segments < 2 || s.live_bytes + s.dead_bytes <= 2 * s.live_bytes + options_.segment_size) return;
  const std::uint64_t oldest = segments_.begin()->first;
  if (oldest == current_ || std::find(compacted_.begin(), compacted_.end(), oldest) != compacted_.end()) return;
  for (const Removable& r : removable_) {
    if (r.segment == oldest) return;
  }
  std::vector<Job*> moving;
  state_->for_each_job([&](const Job& j) {
    if (j.segment == oldest) moving.push_back(const_cast<Job*>(&j));
  });
  for (Job* j : moving) {
    job_written(*j);
    ++records_migrated_;
  }
  compacted_.push_back(oldest);
}

void Binlog::remove_compacted(std::uint64_t synced) {
  std::size_t kept = 0;
  for (const Removable& r : removable_) {
    if (r.batch > synced) {
      removable_[kept++] = r;  // its copies are written but not yet known to be on disk
      continue;
    }
    auto it = segments_.find(r.segment);
    if (it == segments_.end()) continue;
    // Unlinked here, in segment order (replay must never see a younger segment gone and an older one back), with
    // the descriptor still open: the unlink only drops the name. The last close frees the file's blocks and page
    // cache (4-8 ms for a 10 MiB segment on the project's VM), so it is left to the caller (take_retired).
    ::unlink(path_of(r.segment).c_str());
    retired_.push_back(it->second.fd);
    segments_.erase(it);
  }
  removable_.resize(kept);
}

BinlogStats Binlog::stats() const {
  BinlogStats s;
  s.segments = segments_.size();
  s.segment_size = options_.segment_size;
  s.records_written = appended_seq_;
  s.records_migrated = records_migrated_;
  if (!segments_.empty()) s.oldest_index = segments_.begin()->first;
  s.current_index = current_;
  for (const auto& [seq, seg] : segments_) {
    s.live_bytes += seg.live;
    s.dead_bytes += seg.size - seg.live;
  }
  return s;
}

}  // namespace ringlet::queue
