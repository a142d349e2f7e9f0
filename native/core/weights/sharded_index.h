// Sharded checkpoints: `model.safetensors.index.json` and `pytorch_model.bin.index.json`. Both are written by
// transformers' save_pretrained in the same shape:
//
//   {"metadata": {"total_size": 11315992576}, "weight_map": {"<tensor name>": "<shard file name>", ...}}
//
// The index is a download like any other, so shard names are untrusted: a shard path must be relative, must not
// contain "..", and is resolved against the index's folder (it cannot reach outside it). Every shard is opened and
// validated up front, every tensor the index lists must be in its shard, and every tensor a shard holds must be
// listed (a mismatch means a broken or mixed-up download). All shards must have the same format.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "mapped_file.h"
#include "weight_file.h"

namespace showo2::weights {

// Opens one shard (a single-file checkpoint); open_weight_file passes its by-content dispatcher here.
using ShardOpener = std::function<std::unique_ptr<WeightFile>(const std::string& path)>;

std::unique_ptr<WeightFile> open_sharded_checkpoint(const std::string& index_path, const ShardOpener& open_shard);
// The same for an index already mapped or in memory (MappedFile::from_bytes); its path() resolves the shard names.
std::unique_ptr<WeightFile> open_sharded_checkpoint(const MappedFile& index, const ShardOpener& open_shard);

// Resolves a shard name from an index against the index's folder. Throws ERR_CORRUPT_FILE naming the index when the
// name is empty, absolute (/x, \x, C:x) or has a ".." component.
std::string resolve_shard_path(const std::string& index_path, const std::string& shard_name);

}  // namespace showo2::weights
