// signals.cpp — blocking signals, the signalfd, and putting things back on close.
#include "ringlet/runtime/signals.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cerrno>

namespace ringlet {
namespace {

Result<sigset_t> make_set(std::initializer_list<int> signals) noexcept {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) {
    if (s == SIGKILL || s == SIGSTOP || sigaddset(&set, s) != 0) return errc::invalid_argument;
  }
  return set;
}

}  // namespace

Status SignalSet::block_in_this_thread(std::initializer_list<int> signals) noexcept {
  Result<sigset_t> set = make_set(signals);
  if (!set) return set.error();
  int r = pthread_sigmask(SIG_BLOCK, &*set, nullptr);
  if (r != 0) return Error{r};
  return {};
}

Result<SignalSet> SignalSet::create(Loop& loop, std::initializer_list<int> signals) {
  Result<sigset_t> set = make_set(signals);
  if (!set) return set.error();
  auto core = std::make_unique<Core>();
  core->loop = &loop;
  core->signals = *set;
  sigset_t before;
  // Block first: a signal arriving between the two calls then waits, pending, for the signalfd.
  if (int r = pthread_sigmask(SIG_BLOCK, &*set, &before); r != 0) return Error{r};
  sigemptyset(&core->unblock);
  for (int s : signals) {
    if (!sigismember(&before, s)) sigaddset(&core->unblock, s);
  }
  int fd = signalfd(-1, &core->signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    Error e{errno};
    pthread_sigmask(SIG_UNBLOCK, &core->unblock, nullptr);
    return e;
  }
  core->io.fd = fd;
  return SignalSet(std::move(core));
}

SignalSet& SignalSet::operator=(SignalSet&& o) noexcept {
  if (this != &o) {
    close();
    core_ = std::move(o.core_);
  }
  return *this;
}

void SignalSet::close() noexcept {
  if (!core_) return;
  // Discard what is pending, or unblocking below would deliver it with its default action (often: exit).
  signalfd_siginfo info;
  while (::read(core_->io.fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
  }
  core_->loop->backend().detach(core_->io);
  ::close(core_->io.fd);
  pthread_sigmask(SIG_UNBLOCK, &core_->unblock, nullptr);
  core_.reset();
}

Result<int> SignalSet::Wait::await_resume() noexcept {
  int r = IoAwaitable::await_resume();
  if (r < 0) return error_from_result(r);
  if (r != static_cast<int>(sizeof info_)) return Error{EIO};  // signalfd reads whole records or fails
  return static_cast<int>(info_.ssi_signo);
}

}  // namespace ringlet
