// when.hpp — waiting for several tasks: when_all (every result) and when_any (the first to finish). Core-local.
//
// Both are structured: they return only after every child has ended, so no child outlives the call.
//  - when_all runs the children concurrently and returns their results in argument order. Cancelling the awaiting
//    task cancels every child (each then returns whatever its cancellation produces, usually errc::cancelled
//    inside its Result) and still waits for all of them. If a child throws, the others are cancelled and the
//    exception is rethrown once they have ended.
//  - when_any returns the index and result of the first child to finish; the others are cancelled and awaited
//    before it returns (their results are dropped). Cancelling the awaiting task cancels all children; the
//    result is then the first to finish after cancellation.
// void children yield std::monostate.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet {

namespace detail {

template <class T>
using ValueOf = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
Task<ValueOf<T>> as_value(Task<T> task) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    co_return std::monostate{};
  } else {
    co_return co_await std::move(task);
  }
}

// Awaits a join handle, keeping an exception instead of throwing it, so the caller can first wait for the rest.
template <class T>
Task<std::optional<T>> join_catching(JoinHandle<T>* handle, std::exception_ptr* error) {
  try {
    co_return co_await *handle;
  } catch (...) {
    if (!*error) *error = std::current_exception();
  }
  co_return std::nullopt;
}

// Joins child I into its result slot; a child that threw cancels the others.
template <std::size_t I, class Handles, class Results>
Task<void> join_one(Handles* handles, Results* results, std::exception_ptr* error) {
  std::get<I>(*results) = co_await join_catching(&std::get<I>(*handles), error);
  if (*error) std::apply([](auto&... h) { (h.cancel(), ...); }, *handles);
}

template <class... Ts, std::size_t... I>
Task<std::tuple<ValueOf<Ts>...>> when_all_impl(std::index_sequence<I...>, Task<Ts>... tasks) {
  Loop& loop = *Loop::current();
  std::tuple<JoinHandle<ValueOf<Ts>>...> handles{loop.spawn_joinable(as_value(std::move(tasks)))...};
  std::tuple<std::optional<ValueOf<Ts>>...> results;
  std::exception_ptr error;
  // One at a time, in order; the others keep running meanwhile.
  (co_await join_one<I>(&handles, &results, &error), ...);
  if (error) std::rethrow_exception(error);
  co_return std::tuple<ValueOf<Ts>...>{std::move(*std::get<I>(results))...};
}

template <class T>
struct RaceState {
  std::size_t winner = static_cast<std::size_t>(-1);
  std::optional<ValueOf<T>> value;
  std::exception_ptr error;
  std::coroutine_handle<> waiter;
  Loop* loop = nullptr;

  // Waits for the first finisher. Cancelling the waiting task cancels only this wait (the caller then cancels the
  // children and waits for them).
  struct FirstDone {
    RaceState* s;
    CancelState* cancel = nullptr;
    bool await_ready() const noexcept { return s->winner != static_cast<std::size_t>(-1); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      CancelState* cs = nullptr;
      if (cancelled_before_suspend(h, cs)) return false;
      s->waiter = h;
      cancel = cs;
      if (cs != nullptr) cs->install(&FirstDone::cancel_slot, this);
      return true;
    }
    void await_resume() noexcept {
      if (cancel != nullptr) cancel->clear();
    }
    static void cancel_slot(void* ctx) noexcept {
      auto* self = static_cast<FirstDone*>(ctx);
      if (auto h = std::exchange(self->s->waiter, nullptr)) self->s->loop->schedule(h);
    }
  };
};

template <class T>
Task<void> race_runner(Task<T> task, RaceState<T>* state, std::size_t index) {
  std::optional<ValueOf<T>> value;
  std::exception_ptr error;
  try {
    value.emplace(co_await as_value(std::move(task)));
  } catch (...) {
    error = std::current_exception();
  }
  if (state->winner != static_cast<std::size_t>(-1)) co_return;  // someone else was first
  state->winner = index;
  state->value = std::move(value);
  state->error = error;
  if (auto h = std::exchange(state->waiter, nullptr)) state->loop->schedule(h);
}

}  // namespace detail

template <class T>
struct WhenAnyResult {
  std::size_t index;
  detail::ValueOf<T> value;
};

template <class... Ts>
Task<std::tuple<detail::ValueOf<Ts>...>> when_all(Task<Ts>... tasks) {
  return detail::when_all_impl(std::index_sequence_for<Ts...>{}, std::move(tasks)...);
}

template <class T>
Task<std::vector<detail::ValueOf<T>>> when_all(std::vector<Task<T>> tasks) {
  Loop& loop = *Loop::current();
  std::vector<JoinHandle<detail::ValueOf<T>>> handles;
  handles.reserve(tasks.size());
  for (auto& t : tasks) handles.push_back(loop.spawn_joinable(detail::as_value(std::move(t))));
  std::vector<detail::ValueOf<T>> results;
  results.reserve(handles.size());
  std::exception_ptr error;
  for (auto& h : handles) {
    std::optional<detail::ValueOf<T>> r = co_await detail::join_catching(&h, &error);
    if (error) {
      for (auto& other : handles) other.cancel();
      continue;
    }
    results.push_back(std::move(*r));
  }
  if (error) std::rethrow_exception(error);
  co_return results;
}

template <class T>
Task<WhenAnyResult<T>> when_any(std::vector<Task<T>> tasks) {
  RINGLET_ASSERT(!tasks.empty());
  Loop& loop = *Loop::current();
  detail::RaceState<T> state;
  state.loop = &loop;
  std::vector<JoinHandle<void>> runners;
  runners.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    runners.push_back(loop.spawn_joinable(detail::race_runner(std::move(tasks[i]), &state, i)));
  }
  co_await typename detail::RaceState<T>::FirstDone{&state};
  for (auto& r : runners) r.cancel();
  for (auto& r : runners) co_await r;  // every child has ended before we return: `state` outlives them all
  if (state.error) std::rethrow_exception(state.error);
  co_return WhenAnyResult<T>{state.winner, std::move(*state.value)};
}

template <class T, class... Rest>
  requires(std::is_same_v<T, Rest> && ...)
Task<WhenAnyResult<T>> when_any(Task<T> first, Task<Rest>... rest) {
  std::vector<Task<T>> tasks;
  tasks.reserve(1 + sizeof...(Rest));
  tasks.push_back(std::move(first));
  (tasks.push_back(std::move(rest)), ...);
  return when_any(std::move(tasks));
}

}  // namespace ringlet
