// The omni mask's prefix-per-row form must agree with the spec's definition (§5.1) evaluated directly.
#include "omni_mask.h"
#include "test_util.h"

using namespace showo2;

// Spec §5.1, written independently of OmniMask: causal OR both positions inside the same block.
static bool spec_allowed(const std::vector<BidirectionalBlock>& blocks, int64_t q, int64_t k) {
  if (k <= q) return true;
  for (const auto& b : blocks)
    if (b.offset <= q && q < b.offset + b.length && b.offset <= k && k < b.offset + b.length) return true;
  return false;
}

SHOWO2_TEST(matches_the_spec_definition) {
  std::vector<std::vector<BidirectionalBlock>> samples = {
      {{2, 5}},                    // one T2I-like block
      {{1, 3}, {6, 4}, {12, 1}},   // several blocks, a length-1 block
      {},                          // plain causal
      {{0, 20}},                   // block covering the whole sequence = full attention
  };
  OmniMask mask = OmniMask::omni(samples);
  const int64_t L = 20;
  for (size_t s = 0; s < samples.size(); ++s)
    for (int64_t q = 0; q < L; ++q)
      for (int64_t k = 0; k < L; ++k)
        CHECK_EQ(mask.allowed(static_cast<int64_t>(s), q, k, L), spec_allowed(samples[s], q, k));
}

SHOWO2_TEST(query_offset_for_kv_cache) {
  OmniMask full_seq = OmniMask::omni({{{3, 4}}});
  OmniMask tail = OmniMask::omni({{{3, 4}}}, /*query_offset=*/5);
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t k = 0; k < 10; ++k) CHECK_EQ(tail.allowed(0, r, k, 10), full_seq.allowed(0, r + 5, k, 10));
}

SHOWO2_TEST(key_end_is_monotone_and_clamped) {
  OmniMask mask = OmniMask::omni({{{4, 6}, {12, 3}}});
  int64_t prev = 0;
  for (int64_t q = 0; q < 16; ++q) {
    int64_t e = mask.key_end(0, q, 14);
    CHECK(e >= prev);
    CHECK(e <= 14);
    prev = e;
  }
  CHECK_EQ(OmniMask::full().key_end(0, 0, 9), 9);
  CHECK_EQ(OmniMask::causal().key_end(0, 3, 9), 4);
}

SHOWO2_TEST(invalid_masks_are_rejected) {
  CHECK_THROWS_CODE(OmniMask::omni({{{0, 5}, {3, 4}}}), InvalidArgument);  // overlapping blocks
  CHECK_THROWS_CODE(OmniMask::omni({{{-1, 5}}}), InvalidArgument);
  OmniMask two = OmniMask::omni({{{0, 2}}, {{1, 2}}});
  CHECK_THROWS_CODE(two.validate(3), InvalidArgument);
  two.validate(2);
  OmniMask::omni({{{0, 2}}}).validate(7);  // one shared list fits any batch
}

SHOWO2_TEST_MAIN()
