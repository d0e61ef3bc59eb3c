// crc32c.hpp — CRC-32C (Castagnoli), the checksum of every binlog record (queue/binlog.hpp). Thread-safe (pure).
//
// crc32c() uses the SSE 4.2 crc32 instruction where the CPU has one (x86-64 since 2008: 8 bytes per instruction)
// and the table otherwise; both give the same value, so a binlog written on one machine replays on any other.
// At 4 KiB job bodies the table version was the largest user-space cost of a put with --fsync always (#11).
#pragma once

#include <cstdint>
#include <string_view>

namespace ringlet::queue {

std::uint32_t crc32c(std::string_view data) noexcept;
// The table version, always (what crc32c() falls back to; the tests compare the two).
std::uint32_t crc32c_portable(std::string_view data) noexcept;

}  // namespace ringlet::queue
