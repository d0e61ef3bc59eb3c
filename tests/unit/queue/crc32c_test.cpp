// Tests of CRC-32C (src/ringlet/queue/crc32c.hpp): the published check values, and the instruction and the table
// agreeing at every length and alignment (a binlog written with one must replay with the other).
#include "ringlet/queue/crc32c.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringlet::queue {
namespace {

TEST(Crc32c, known_values_match_the_published_check_values) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC catalogue's check value for CRC-32C
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 (iSCSI), B.4: 32 bytes of zeros
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);  // and of ones
  EXPECT_EQ(crc32c_portable("123456789"), 0xE3069283u);
}

TEST(Crc32c, the_instruction_and_the_table_agree_at_every_length_and_alignment) {
  std::string data(5000, '\0');
  std::uint32_t x = 12345;
  for (char& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t n : {0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 4096, 4101, 4990}) {
      std::string_view v = std::string_view(data).substr(offset, n);
      ASSERT_EQ(crc32c(v), crc32c_portable(v)) << "offset " << offset << ", " << n << " bytes";
    }
  }
}

}  // namespace
}  // namespace ringlet::queue
