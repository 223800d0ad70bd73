// Multimodal prompts (spec §5.2) and the attention masks they drive (spec §2.8): placeholder
// expansion, soft-row placement, block ids, prefill cuts that keep blocks whole, the key-range
// rule, and — through the decoder on the `tiny` model — what each mask rule lets a position see.
#define BOOST_TEST_MODULE test_multimodal_prompt
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <random>

#include "model/error.h"
#include "model/gemma4/attention_mask.h"
#include "model/gemma4/multimodal_prompt.h"
#include "model/model_loader.h"
#include "tests/test_models.h"

using namespace rawflow;

namespace {

const LoadedModel& tiny_model() { return test::tiny_model(11, "test_multimodal_prompt"); }

// An embedded media item whose rows are random but of the scale of text embedding rows.
MediaEmbedding media(MediaEmbedding::Kind kind, int64_t rows, int64_t hidden, uint32_t seed,
                     std::string ts = {}) {
  MediaEmbedding m;
  m.kind = kind;
  m.rows = rows;
  m.timestamp = std::move(ts);
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  m.values.resize(static_cast<size_t>(rows * hidden));
  for (float& v : m.values) v = d(g);
  return m;
}

std::vector<ChatMessage> user(std::vector<ChatPart> parts) { return {{"user", std::move(parts)}}; }
ChatPart text(std::string t) { return {ChatPart::Kind::Text, std::move(t)}; }
ChatPart image() { return {ChatPart::Kind::Image, {}}; }
ChatPart audio() { return {ChatPart::Kind::Audio, {}}; }
ChatPart video() { return {ChatPart::Kind::Video, {}}; }

// Positions of token `id` in `p`.
std::vector<size_t> find_all(const PromptInput& p, int32_t id) {
  std::vector<size_t> at;
  for (size_t i = 0; i < p.size(); ++i)
    if (p.tokens[i] == id) at.push_back(i);
  return at;
}

// Logits of every position of `p`, prefilled in pieces that never cut a block.
std::vector<float> logits_of(const PromptInput& p, size_t max_chunk, bool full_layers_bidir) {
  const Gemma4Text& m = *tiny_model().text;
  KvCache cache(m.config());
  ForwardOptions fo;
  fo.bidirectional_on_full_layers = full_layers_bidir;
  std::vector<float> all;
  for (size_t at = 0; at < p.size();) {
    const size_t end = p.prefill_cut(at, max_chunk);
    SequenceChunk ch = p.chunk(&cache, at, end, LogitsWanted::All);
    auto r = m.forward(std::span<SequenceChunk>(&ch, 1), fo);
    all.insert(all.end(), r.logits[0].begin(), r.logits[0].end());
    at = end;
  }
  return all;
}

double row_diff(const std::vector<float>& a, const std::vector<float>& b, size_t row,
                int64_t vocab) {
  double d = 0;
  for (int64_t v = 0; v < vocab; ++v)
    d = std::max(d, static_cast<double>(std::fabs(a[row * vocab + v] - b[row * vocab + v])));
  return d;
}

}  // namespace

BOOST_AUTO_TEST_CASE(key_ranges_follow_spec_2_8) {
  // Sliding layer, window 16: a text query sees the 16 keys ending at itself.
  BOOST_TEST(visible_keys(30, true, 16, -1).lo == 15);
  BOOST_TEST(visible_keys(30, true, 16, -1).hi == 30);
  BOOST_TEST(visible_keys(3, true, 16, -1).lo == 0);
  // A soft token also sees the rest of its block; the window still bounds what is behind it
  // (the §2.8 edge case of a block longer than the window).
  BOOST_TEST(visible_keys(30, true, 16, 45).lo == 15);
  BOOST_TEST(visible_keys(30, true, 16, 45).hi == 45);
  // Full layer: everything causal, plus the block when the switch applies it there.
  BOOST_TEST(visible_keys(30, false, 16, -1).lo == 0);
  BOOST_TEST(visible_keys(30, false, 16, 45).hi == 45);
  // The last token of a block has nothing ahead.
  BOOST_TEST(visible_keys(45, true, 16, 45).hi == 45);
}

BOOST_AUTO_TEST_CASE(image_expands_in_place_with_its_rows) {
  const auto& m = tiny_model();
  const int64_t H = m.text->config().hidden;
  const auto img = media(MediaEmbedding::Kind::Image, 6, H, 1);
  const PromptInput p = build_multimodal_prompt(
      *m.tokenizer, user({image(), text("What is shown?")}), std::span(&img, 1), H);
  const Tokenizer& tok = *m.tokenizer;
  const auto soft = find_all(p, tok.special("<|image|>"));
  BOOST_REQUIRE_EQUAL(soft.size(), 6u);
  BOOST_TEST(p.tokens[soft.front() - 1] == tok.special("<|image>"));
  BOOST_TEST(p.tokens[soft.back() + 1] == tok.special("<image|>"));
  for (size_t k = 0; k < soft.size(); ++k) {
    BOOST_TEST(soft[k] == soft[0] + k);  // consecutive
    BOOST_TEST(p.block_ids[soft[k]] == 0);
    BOOST_REQUIRE(p.soft_index[soft[k]] == static_cast<int32_t>(k));
    BOOST_TEST(p.soft[k * H + 7] == img.values[k * H + 7]);
  }
  size_t soft_count = 0;
  for (size_t i = 0; i < p.size(); ++i) soft_count += p.soft_index[i] >= 0;
  BOOST_TEST(soft_count == 6u);
  // The template's text around the image (§5.3): "\n\n" before <|image> and after <image|>.
  const std::string s = tok.decode(p.tokens);
  BOOST_TEST(s.find("user\n\n\n<|image>") != std::string::npos);
  BOOST_TEST(s.find("<image|>\n\nWhat is shown?<turn|>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(images_audio_and_video_frames_get_their_own_blocks) {
  const auto& m = tiny_model();
  const int64_t H = m.text->config().hidden;
  const Tokenizer& tok = *m.tokenizer;
  std::vector<MediaEmbedding> items = {media(MediaEmbedding::Kind::Image, 4, H, 1),
                                       media(MediaEmbedding::Kind::Audio, 5, H, 2),
                                       media(MediaEmbedding::Kind::Image, 3, H, 3),
                                       media(MediaEmbedding::Kind::VideoFrame, 2, H, 4, "00:00"),
                                       media(MediaEmbedding::Kind::VideoFrame, 2, H, 5, "00:02")};
  const PromptInput p = build_multimodal_prompt(
      tok, user({image(), text("and"), audio(), image(), video(), text("?")}), items, H);
  const auto img = find_all(p, tok.special("<|image|>"));
  const auto aud = find_all(p, tok.special("<|audio|>"));
  const auto vid = find_all(p, tok.special("<|video|>"));
  BOOST_REQUIRE_EQUAL(img.size(), 7u);
  BOOST_REQUIRE_EQUAL(aud.size(), 5u);
  BOOST_REQUIRE_EQUAL(vid.size(), 4u);
  for (size_t k = 0; k < 4; ++k) BOOST_TEST(p.block_ids[img[k]] == 0);
  for (size_t k = 4; k < 7; ++k) BOOST_TEST(p.block_ids[img[k]] == 1);
  for (size_t a : aud) BOOST_TEST(p.block_ids[a] == -1);  // audio is causal, never a block
  BOOST_TEST(p.block_ids[vid[0]] == 2);
  BOOST_TEST(p.block_ids[vid[1]] == 2);
  BOOST_TEST(p.block_ids[vid[2]] == 3);  // each frame its own block
  BOOST_TEST(p.tokens[aud.front() - 1] == tok.special("<|audio>"));
  BOOST_TEST(p.tokens[aud.back() + 1] == tok.special("<audio|>"));
  // Rows in order of appearance: the second image's first row is item 2's first row.
  BOOST_TEST(p.soft[static_cast<size_t>(p.soft_index[img[4]]) * H] == items[2].values[0]);
  BOOST_TEST(p.soft[static_cast<size_t>(p.soft_index[aud[0]]) * H] == items[1].values[0]);
  // Video frames: "mm:ss <|image> N×<|video|> <image|>", joined by a space (§3.6).
  const std::string s = tok.decode(p.tokens);
  BOOST_TEST(s.find("00:00 <|image><|video|><|video|><image|> 00:02 <|image>") !=
             std::string::npos);
}

// A streaming request's prompt is rebuilt from pieces: slices at any cuts between blocks,
// appended in order, give back the prompt — tokens, the rows each token uses, and blocks that are
// distinct and in order (their ids may be renumbered, the masks only compare them).
BOOST_AUTO_TEST_CASE(slices_appended_in_order_give_back_the_prompt) {
  const auto& m = tiny_model();
  const int64_t H = m.text->config().hidden;
  std::vector<MediaEmbedding> items = {media(MediaEmbedding::Kind::Image, 4, H, 1),
                                       media(MediaEmbedding::Kind::Audio, 5, H, 2),
                                       media(MediaEmbedding::Kind::Image, 3, H, 3)};
  const PromptInput p = build_multimodal_prompt(
      *m.tokenizer, user({image(), text("and"), audio(), image(), text("?")}), items, H);
  // Every cut that does not split a block, one at a time, and all of them at once.
  std::vector<size_t> cuts;
  for (size_t i = 1; i < p.size(); ++i)
    if (p.block_ids[i] < 0 || p.block_ids[i] != p.block_ids[i - 1]) cuts.push_back(i);
  BOOST_REQUIRE_GT(cuts.size(), 10u);
  auto check = [&](const std::vector<size_t>& at) {
    PromptInput q;
    size_t begin = 0;
    for (size_t end : at) {
      const PromptInput piece = p.slice(begin, end);
      BOOST_REQUIRE_EQUAL(piece.size(), end - begin);
      q.append(piece);
      begin = end;
    }
    q.append(p.slice(begin, p.size()));
    BOOST_REQUIRE(q.tokens == p.tokens);
    BOOST_REQUIRE_EQUAL(q.hidden, H);
    BOOST_REQUIRE_EQUAL(q.soft_rows(), p.soft_rows());
    for (size_t i = 0; i < p.size(); ++i) {
      BOOST_REQUIRE_EQUAL(q.soft_index[i] < 0, p.soft_index[i] < 0);
      if (p.soft_index[i] >= 0)
        BOOST_REQUIRE(std::equal(p.soft.begin() + p.soft_index[i] * H,
                                 p.soft.begin() + (p.soft_index[i] + 1) * H,
                                 q.soft.begin() + q.soft_index[i] * H));
      BOOST_REQUIRE_EQUAL(q.block_ids[i] < 0, p.block_ids[i] < 0);
      if (i > 0 && p.block_ids[i] >= 0 && p.block_ids[i - 1] >= 0)
        BOOST_REQUIRE_EQUAL(q.block_ids[i] == q.block_ids[i - 1],
                            p.block_ids[i] == p.block_ids[i - 1]);
    }
  };
  for (size_t c : cuts) check({c});
  check(cuts);
  // A text-only piece may leave its per-token lists empty.
  PromptInput q = p.slice(0, 2);
  PromptInput bare;
  bare.tokens = {p.tokens[2]};
  q.append(bare);
  BOOST_TEST(q.soft_index.size() == 3u);
  BOOST_TEST(q.block_ids.size() == 3u);
  BOOST_CHECK_THROW(p.slice(3, 2), EngineError);
  BOOST_CHECK_THROW(p.slice(0, p.size() + 1), EngineError);
  // Rows of another width cannot join.
  PromptInput wide;
  wide.tokens = {p.tokens[0]};
  wide.soft_index = {0};
  wide.block_ids = {-1};
  wide.hidden = H + 1;
  wide.soft.assign(static_cast<size_t>(H + 1), 0.f);
  PromptInput whole = p;
  BOOST_CHECK_THROW(whole.append(wide), EngineError);
}

BOOST_AUTO_TEST_CASE(media_and_parts_must_match) {
  const auto& m = tiny_model();
  const int64_t H = m.text->config().hidden;
  const auto img = media(MediaEmbedding::Kind::Image, 2, H, 1);
  const auto aud = media(MediaEmbedding::Kind::Audio, 2, H, 1);
  auto fails = [&](const std::vector<ChatMessage>& msgs, std::span<const MediaEmbedding> items,
                   const std::string& what) {
    try {
      build_multimodal_prompt(*m.tokenizer, msgs, items, H);
      BOOST_ERROR("no error for: " << what);
    } catch (const EngineError& e) {
      BOOST_TEST_MESSAGE(what << ": " << e.what());
      BOOST_TEST(std::string(e.what()).find("multimodal prompt") != std::string::npos);
    }
  };
  fails(user({image(), image()}), std::span(&img, 1), "two image parts, one image");
  fails(user({text("hi")}), std::span(&img, 1), "an image with no part");
  fails(user({image()}), std::span(&aud, 1), "audio item for an image part");
  MediaEmbedding bad = img;
  bad.values.resize(5);
  fails(user({image()}), std::span(&bad, 1), "rows × hidden mismatch");
}

BOOST_AUTO_TEST_CASE(prefill_cuts_never_split_a_block) {
  PromptInput p;
  p.tokens.assign(30, 7);
  p.block_ids.assign(30, -1);
  p.soft_index.assign(30, -1);
  for (int i = 5; i < 15; ++i) p.block_ids[i] = 0;   // block 0: 5..14
  for (int i = 15; i < 18; ++i) p.block_ids[i] = 1;  // block 1 right after: 15..17
  BOOST_TEST(p.prefill_cut(0, 8) == 5u);             // would cut block 0: stop before it
  BOOST_TEST(p.prefill_cut(5, 4) == 15u);            // block longer than the chunk: kept whole
  BOOST_TEST(p.prefill_cut(5, 11) == 15u);           // would cut block 1: stop before it
  BOOST_TEST(p.prefill_cut(15, 2) == 18u);
  BOOST_TEST(p.prefill_cut(18, 100) == 30u);
  BOOST_TEST(p.prefill_cut(0, 15) == 15u);  // ends exactly between blocks
}

// What each position can see, observed through the decoder: change one soft row and look at
// which positions' logits move. Tiny has sliding layers (window 16) and one full layer.
BOOST_AUTO_TEST_CASE(masks_seen_through_the_decoder) {
  const auto& m = tiny_model();
  const int64_t H = m.text->config().hidden;
  const int64_t V = m.text->config().vocab_size;
  const Tokenizer& tok = *m.tokenizer;
  std::vector<MediaEmbedding> items = {media(MediaEmbedding::Kind::Image, 6, H, 1),
                                       media(MediaEmbedding::Kind::Image, 6, H, 2),
                                       media(MediaEmbedding::Kind::Audio, 6, H, 3)};
  const auto msgs = user({text("look"), image(), image(), audio(), text("now")});
  const PromptInput base = build_multimodal_prompt(tok, msgs, items, H);
  const auto img = find_all(base, tok.special("<|image|>"));
  const auto aud = find_all(base, tok.special("<|audio|>"));
  BOOST_REQUIRE_EQUAL(img.size(), 12u);
  const auto ref = logits_of(base, 512, false);

  // Any split of the prefill that keeps blocks whole gives the same logits (bound as in
  // test_gemma4_text: the rows are computed in a fixed order, so only 0 is expected).
  const auto split = logits_of(base, 7, false);
  for (size_t i = 0; i < base.size(); ++i) BOOST_TEST(row_diff(ref, split, i, V) <= 1e-5);

  // The last row of image 1 changes: every token of image 1 sees it (bidirectional block), the
  // text before the image does not; image 2 comes after, so it does (causally).
  auto perturbed = items;
  for (int64_t d = 0; d < H; ++d) perturbed[0].values[5 * H + d] += 1.0f;
  const auto moved = logits_of(build_multimodal_prompt(tok, msgs, perturbed, H), 512, false);
  for (size_t k = 0; k < 6; ++k) BOOST_TEST(row_diff(ref, moved, img[k], V) > 1e-3);
  for (size_t i = 0; i + 1 < img[0]; ++i) BOOST_TEST(row_diff(ref, moved, i, V) == 0.0);

  // The last row of image 2 changes: image 1 (an earlier block) must not see it.
  perturbed = items;
  for (int64_t d = 0; d < H; ++d) perturbed[1].values[5 * H + d] += 1.0f;
  const auto moved2 = logits_of(build_multimodal_prompt(tok, msgs, perturbed, H), 512, false);
  for (size_t k = 0; k < 6; ++k) BOOST_TEST(row_diff(ref, moved2, img[k], V) == 0.0);
  BOOST_TEST(row_diff(ref, moved2, img[6], V) > 1e-3);

  // The last audio row changes: audio is causal, so no earlier audio token sees it.
  perturbed = items;
  for (int64_t d = 0; d < H; ++d) perturbed[2].values[5 * H + d] += 1.0f;
  const auto moved3 = logits_of(build_multimodal_prompt(tok, msgs, perturbed, H), 512, false);
  for (size_t k = 0; k < 5; ++k) BOOST_TEST(row_diff(ref, moved3, aud[k], V) == 0.0);
  BOOST_TEST(row_diff(ref, moved3, aud[5], V) > 1e-3);

  // llama.cpp's rule (blocks also on full layers) is a different model of attention: the image
  // rows differ, the text before the image does not.
  const auto llama_rule = logits_of(base, 512, true);
  BOOST_TEST(row_diff(ref, llama_rule, img[0], V) > 1e-4);
  BOOST_TEST(row_diff(ref, llama_rule, 0, V) == 0.0);
}
