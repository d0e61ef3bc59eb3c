#include "ringlet/runtime/intrusive_list.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace ringlet {
namespace {

struct Node {
  int value = 0;
  ListLink<Node> link;
};
using List = IntrusiveList<Node, &Node::link>;

std::vector<int> values(const List& list) {
  std::vector<int> out;
  for (Node* n = list.front(); n != nullptr; n = List::next(*n)) out.push_back(n->value);
  return out;
}

TEST(IntrusiveList, push_back_keeps_arrival_order_and_push_front_goes_first) {
  Node a{1}, b{2}, c{3};
  List list;
  EXPECT_TRUE(list.empty());
  list.push_back(a);
  list.push_back(b);
  list.push_front(c);
  EXPECT_EQ(values(list), (std::vector<int>{3, 1, 2}));
  while (list.pop_front() != nullptr) {
  }
  EXPECT_TRUE(list.empty());
}

TEST(IntrusiveList, an_element_leaves_from_the_head_the_middle_or_the_tail_and_appending_still_works) {
  Node n[5] = {{0}, {1}, {2}, {3}, {4}};
  List list;
  for (Node& x : n) list.push_back(x);
  list.remove(n[2]);  // middle
  EXPECT_EQ(values(list), (std::vector<int>{0, 1, 3, 4}));
  list.remove(n[4]);  // tail: the head's prev must follow
  list.push_back(n[2]);
  EXPECT_EQ(values(list), (std::vector<int>{0, 1, 3, 2}));
  list.remove(n[0]);  // head: the new head inherits the tail
  list.push_back(n[4]);
  EXPECT_EQ(values(list), (std::vector<int>{1, 3, 2, 4}));
  EXPECT_EQ(n[0].link.prev, nullptr);
  EXPECT_EQ(n[0].link.next, nullptr);
  for (int v : {1, 3, 2, 4}) list.remove(n[v]);
  EXPECT_TRUE(list.empty());
  list.push_back(n[0]);  // an emptied list starts over
  EXPECT_EQ(values(list), (std::vector<int>{0}));
  list.remove(n[0]);
}

}  // namespace
}  // namespace ringlet
