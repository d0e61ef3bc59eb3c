// mailbox.cpp — the two ends of the message rings, as a shard sees them: pushing to a target (or queueing while
// its ring is full), waking it once per turn, and draining every inbound ring in loop phase 3.
#include "ringlet/runtime/shard/shard_set.hpp"

namespace ringlet {

Shard::Outbound& Shard::outbound(unsigned target) {
  RINGLET_ASSERT(target < outbound_.size());
  std::unique_ptr<Outbound>& out = outbound_[target];
  if (!out) {
    out = std::make_unique<Outbound>();
    out->owner = this;
    out->target = target;
    if (target != id_) out->mailbox = &set_->mailbox(id_, target);
  }
  return *out;
}

bool Shard::try_push(Outbound& out, Message& m) {
  if (out.backlogged()) return false;  // keep order: earlier messages are still waiting for room
  if (!out.mailbox->ring.try_emplace(std::move(m))) return false;
  note_pushed(out);
  return true;
}

void Shard::note_pushed(Outbound& out) {
  counters_->messages_sent.add();
  loop_->request_flush(out);  // wake the receiver once, at the end of this turn
}

void Shard::Outbound::flush_now() noexcept { owner->set_->shard(target).loop().wake(); }

void Shard::add_waiter(Outbound& out, detail::RoomWaiter* w) {
  w->next = nullptr;
  if (out.waiters_tail != nullptr) {
    out.waiters_tail->next = w;
  } else {
    out.waiters_head = w;
  }
  out.waiters_tail = w;
  ask_for_room(out);
}

void Shard::ask_for_room(Outbound& out) {
  if (!out.queued_for_retry) {
    out.queued_for_retry = true;
    retry_list_.push_back(&out);
  }
  // Dekker-style handshake with the consumer (drain(): publish head, then read the flag; all seq_cst): either it
  // sees our flag and wakes us, or we see its new head here and retry at once.
  out.mailbox->producer_waiting.store(true, std::memory_order_seq_cst);
  if (out.mailbox->ring.free_slots() > 0) loop_->wake();
}

bool Shard::retry(Outbound& out) {
  if (out.target == id_) {  // messages to ourselves: run the ones queued before this turn
    std::size_t n = out.overflow.size();
    for (std::size_t i = 0; i < n; ++i) {
      Message m = std::move(out.overflow.front());
      out.overflow.pop_front();
      overflow_size_.fetch_sub(1, std::memory_order_relaxed);
      counters_->messages_received.add();
      m.run();
    }
    if (!out.overflow.empty()) loop_->wake();
    return out.overflow.empty();
  }
  bool pushed_any = false;
  // Overflow first (it was sent before any waiter could queue behind it), then waiting tasks, in order.
  while (!out.overflow.empty()) {
    if (!out.mailbox->ring.try_emplace(std::move(out.overflow.front()))) break;
    out.overflow.pop_front();
    overflow_size_.fetch_sub(1, std::memory_order_relaxed);
    counters_->messages_sent.add();
    pushed_any = true;
  }
  while (out.overflow.empty() && out.waiters_head != nullptr && out.mailbox->ring.free_slots() > 0) {
    detail::RoomWaiter* w = out.waiters_head;
    out.waiters_head = w->next;
    if (out.waiters_head == nullptr) out.waiters_tail = nullptr;
    w->push_now(*out.mailbox);
    counters_->messages_sent.add();
    pushed_any = true;
  }
  if (pushed_any) loop_->request_flush(out);
  return !out.backlogged();
}

bool Shard::drain() noexcept {
  bool more = false;
  unsigned n = set_->size();
  for (unsigned from = 0; from < n; ++from) {
    if (from == id_) continue;
    detail::Mailbox* p = set_->mailbox_if_any(from, id_);
    if (p == nullptr) continue;
    std::size_t ran = p->ring.consume([](Message& m) { m.run(); }, kDrainBudget);
    if (ran == 0) continue;
    counters_->messages_received.add(ran);
    if (ran == kDrainBudget) more = true;
    // The head is published (seq_cst); now the flag, in the order ask_for_room() expects.
    if (p->producer_waiting.load(std::memory_order_seq_cst) &&
        p->producer_waiting.exchange(false, std::memory_order_acq_rel)) {
      set_->shard(from).loop().wake();
    }
  }
  // Our own backlog: move what now fits. Entries stay listed until their backlog is gone.
  if (!retry_list_.empty()) {
    std::vector<Outbound*> pending;
    pending.swap(retry_list_);
    for (Outbound* out : pending) {
      out->queued_for_retry = false;
      if (!retry(*out)) {
        if (out->target == id_) {
          out->queued_for_retry = true;
          retry_list_.push_back(out);
        } else {
          ask_for_room(*out);
        }
      }
    }
  }
  return more;
}

}  // namespace ringlet
