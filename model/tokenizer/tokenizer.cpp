// The Gemma 4 tokenizer, written to give the same ids as llama.cpp's LLAMA_VOCAB_PRE_TYPE_GEMMA4
// path (src/llama-vocab.cpp: tokenizer_st_partition, llm_tokenizer_bpe_session, unicode.cpp).
#include "model/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <utility>

#include "model/error.h"

namespace rawflow {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";    // U+2581, SentencePiece's space
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Texts llama.cpp treats as end-of-generation and therefore forces to CONTROL, whatever type the
// file gives them (llama-vocab.cpp, "maintain a list of tokens that cause end-of-generation"). The
// type decides whether the text is split out before BPE, so parity needs the same rule.
constexpr std::array<std::string_view, 22> kEogTexts = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81"
    "of\xE2\x96\x81"
    "sentence\xEF\xBD\x9C>",
    "[e~[",
};

// Byte length of the UTF-8 sequence a lead byte announces (continuation bytes count as 1), as in
// llama.cpp's unicode_len_utf8.
size_t utf8_len(uint8_t c) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[c >> 4];
}

// llama.cpp's lenient decoder (unicode_cpt_from_utf8): checks continuation bits only, so overlong
// forms decode; any malformed sequence yields U+FFFD for its first byte.
uint32_t decode_lenient(std::string_view s, size_t& off) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[off + k]); };
  auto cont = [&](size_t k) { return off + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const uint8_t c = b(0);
  if (!(c & 0x80)) {
    off += 1;
    return c;
  }
  if ((c & 0x40) && !(c & 0x20) && cont(1)) {
    const uint32_t r = ((c & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    off += 2;
    return r;
  }
  if ((c & 0x60) == 0x60 && !(c & 0x10) && cont(1) && cont(2)) {
    const uint32_t r = ((c & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    off += 3;
    return r;
  }
  if ((c & 0x70) == 0x70 && !(c & 0x08) && cont(1) && cont(2) && cont(3)) {
    const uint32_t r =
        ((c & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    off += 4;
    return r;
  }
  off += 1;
  return 0xFFFD;
}

void append_utf8(std::string& out, uint32_t cpt) {
  if (cpt <= 0x7F) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0x10FFFF) {
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out.append(kReplacement);  // llama.cpp throws here; no valid text reaches this
  }
}

// Spaces become U+2581 first, then the bytes are decoded and re-encoded: this is what llama.cpp
// feeds to BPE (llama_escape_whitespace, then unicode_regex_split rebuilding words from code
// points), so malformed input maps to U+FFFD the same way.
std::string normalize(std::string_view raw) {
  std::string escaped;
  escaped.reserve(raw.size() + raw.size() / 4);
  for (char c : raw) {
    if (c == ' ')
      escaped.append(kSpaceMark);
    else
      escaped.push_back(c);
  }
  std::string out;
  out.reserve(escaped.size());
  for (size_t off = 0; off < escaped.size();) append_utf8(out, decode_lenient(escaped, off));
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of a well-formed UTF-8 sequence at s[i] (> 0), 0 when it is a valid prefix cut short by
// the end of `s`, or -k when its first k bytes can never be valid (Unicode's "maximal subpart",
// replaced by one U+FFFD).
int utf8_check(std::string_view s, size_t i) {
  const uint8_t c = static_cast<uint8_t>(s[i]);
  if (c < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // range of the first continuation byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return 0;
    const uint8_t b = static_cast<uint8_t>(s[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return -k;
  }
  return need + 1;
}

// Open-addressing hash tables: the vocabulary index and the merge table are built on every model
// load (~780k entries), and node-based std::unordered_map made that the slowest part of loading.
size_t next_pow2(size_t n) {
  size_t c = 16;
  while (c < n) c <<= 1;
  return c;
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix64(h ^ w);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  return mix64(h ^ tail ^ (static_cast<uint64_t>(s.size() - i) << 56));
}

// string -> id; the strings are owned elsewhere and must outlive the table.
class StringIndex {
 public:
  void reserve(size_t n) { slots_.assign(next_pow2(n * 2), Slot{}); }
  // Inserts or overwrites.
  void put(std::string_view s, int32_t id) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    Slot& slot = find_slot(s, hash_bytes(s));
    if (slot.id < 0) ++size_;
    slot = Slot{slot.id < 0 ? hash_bytes(s) : slot.hash, s.data(), static_cast<uint32_t>(s.size()),
                id};
  }
  int32_t get(std::string_view s) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash_bytes(s);
    const size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.hash == h && slot.len == s.size() && std::memcmp(slot.data, s.data(), s.size()) == 0)
        return slot.id;
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    const char* data = nullptr;
    uint32_t len = 0;
    int32_t id = -1;
  };
  Slot& find_slot(std::string_view s, uint64_t h) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.id < 0) return slot;
      if (slot.hash == h && slot.len == s.size() && std::memcmp(slot.data, s.data(), s.size()) == 0)
        return slot;
    }
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Slot{});
    size_ = 0;
    for (const Slot& o : old)
      if (o.id >= 0) {
        find_slot(std::string_view(o.data, o.len), o.hash) = o;
        ++size_;
      }
  }
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

// (left id, right id) -> (rank, merged id); the first insertion of a key wins.
class MergeTable {
 public:
  struct Value {
    int32_t rank = -1;
    int32_t result = -1;
  };
  void reserve(size_t n) { slots_.assign(next_pow2(n * 2), Slot{}); }
  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  void put_if_absent(uint64_t k, Value v) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    Slot& s = find_slot(k);
    if (s.v.rank >= 0) return;
    s = Slot{k, v};
    ++size_;
  }
  const Value* get(uint64_t k) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = mix64(k) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.v.rank < 0) return nullptr;
      if (s.key == k) return &s.v;
    }
  }

 private:
  struct Slot {
    uint64_t key = 0;
    Value v;
  };
  Slot& find_slot(uint64_t k) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = mix64(k) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.v.rank < 0 || s.key == k) return s;
    }
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Slot{});
    size_ = 0;
    for (const Slot& o : old)
      if (o.v.rank >= 0) {
        find_slot(o.key) = o;
        ++size_;
      }
  }
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace

struct Tokenizer::Impl {
  struct Symbol {
    uint32_t start;  // byte offset in the word
    uint32_t n;      // byte length; 0 once merged into its left neighbour
    int32_t prev, next;
    int32_t id;  // interned id of the text, -1 when the text takes part in no merge or token
  };
  struct Bigram {
    int32_t rank;
    int32_t left, right;
    uint32_t n;  // left.n + right.n when queued; anything else means the entry is stale
  };
  // llama.cpp's llm_bigram_bpe::comparator: lowest rank first, then leftmost.
  struct BigramAfter {
    bool operator()(const Bigram& a, const Bigram& b) const {
      return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
  };

  Vocab vocab;
  int32_t n_vocab = 0;
  // Every vocabulary piece (last duplicate wins, like llama.cpp's token_to_id) plus, with ids from
  // n_vocab up, the strings that occur in merges without being tokens.
  StringIndex ids;
  std::deque<std::string> extra;  // storage of those strings (deque: stable addresses)
  MergeTable merges;
  std::array<int32_t, 256> byte_token{};
  std::array<int32_t, 128> ascii_id{};
  std::vector<uint8_t>
      is_control;  // by id: CONTROL or UNKNOWN, i.e. not split without parse_special
  std::vector<uint8_t> render_raw;  // by id: piece shown as stored (control, user-defined)

  // Special-token matcher: a byte trie; `node_special` holds the best-priority special token
  // ending at a node (-1 none), `special_rank` its place in llama.cpp's cache_special_tokens order.
  std::unordered_map<uint64_t, int32_t> trie_edges;
  std::array<int32_t, 256> trie_root{};
  std::vector<int32_t> node_special;
  std::vector<int32_t> special_rank;
  bool has_specials = false;

  int32_t intern(std::string_view s) {
    const int32_t found = ids.get(s);
    if (found >= 0) return found;
    extra.emplace_back(s);
    const int32_t id = n_vocab + static_cast<int32_t>(extra.size()) - 1;
    ids.put(extra.back(), id);
    return id;
  }
  int32_t lookup(std::string_view s) const {
    if (s.size() == 1 && static_cast<uint8_t>(s[0]) < 128)
      return ascii_id[static_cast<uint8_t>(s[0])];
    return ids.get(s);
  }
  int32_t token_of(std::string_view s) const {
    const int32_t id = lookup(s);
    return id < n_vocab ? id : -1;
  }

  void build_specials(const std::vector<uint32_t>& attr);
  void encode_raw(std::string_view raw, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
};

namespace {
// llama.cpp token attributes, needed only to reproduce its special-token rules.
constexpr uint32_t kAttrNormal = 1 << 1, kAttrUnknown = 1 << 2, kAttrControl = 1 << 3,
                   kAttrUserDefined = 1 << 4;
}  // namespace

Tokenizer::Tokenizer(Vocab v) {
  auto impl = std::make_shared<Impl>();
  Impl& t = *impl;
  t.vocab = std::move(v);
  Vocab& voc = t.vocab;
  const size_t n = voc.tokens.size();
  if (n == 0 || n >= (1u << 30)) throw ModelFileError("vocabulary: bad size " + std::to_string(n));
  if (voc.types.empty()) voc.types.assign(n, TokenType::Normal);
  if (voc.scores.empty()) voc.scores.assign(n, 0.0f);
  if (voc.types.size() != n || voc.scores.size() != n)
    throw ModelFileError("vocabulary: " + std::to_string(n) + " tokens but " +
                         std::to_string(voc.types.size()) + " token types and " +
                         std::to_string(voc.scores.size()) + " scores");
  t.n_vocab = static_cast<int32_t>(n);

  t.ids.reserve(n + voc.merges.size() / 4);
  t.merges.reserve(voc.merges.size());
  for (size_t i = 0; i < n; ++i) t.ids.put(voc.tokens[i], static_cast<int32_t>(i));
  for (int c = 0; c < 128; ++c) {
    const char ch = static_cast<char>(c);
    t.ascii_id[c] = t.ids.get(std::string_view(&ch, 1));
  }
  t.byte_token.fill(-1);
  for (size_t i = 0; i < n; ++i) {
    const std::string& s = voc.tokens[i];
    if (voc.types[i] != TokenType::Byte) continue;
    if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || hex_digit(s[3]) < 0 || hex_digit(s[4]) < 0)
      throw ModelFileError("vocabulary: byte token " + std::to_string(i) + " `" + s +
                           "` is not of the form <0xAB>");
  }
  {
    static const char* kHex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char buf[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      t.byte_token[b] = t.ids.get(std::string_view(buf, 6));
    }
  }

  std::string joined;
  for (size_t r = 0; r < voc.merges.size(); ++r) {
    const std::string& m = voc.merges[r];
    const size_t pos = m.find(' ', 1);  // llama.cpp's split rule
    if (pos == std::string::npos) continue;
    const std::string_view left(m.data(), pos), right(m.data() + pos + 1, m.size() - pos - 1);
    const int32_t l = t.intern(left), rr = t.intern(right);
    joined.assign(left);
    joined.append(right);
    const int32_t res = t.intern(joined);
    t.merges.put_if_absent(MergeTable::key(l, rr),
                           {static_cast<int32_t>(r), res});  // first rank wins
  }

  std::vector<uint32_t> attr(n);
  for (size_t i = 0; i < n; ++i) {
    switch (voc.types[i]) {
      case TokenType::Normal:
        attr[i] = kAttrNormal;
        break;
      case TokenType::Unknown:
        attr[i] = kAttrUnknown;
        break;
      case TokenType::Control:
        attr[i] = kAttrControl;
        break;
      case TokenType::UserDefined:
        attr[i] = kAttrUserDefined;
        break;
      default:
        attr[i] = 0;
        break;
    }
  }
  bool eog_tool_response = false;
  int32_t eog_s = -1;
  for (std::string_view s : kEogTexts) {
    const int32_t id = t.token_of(s);
    if (id < 0) continue;
    attr[id] |= kAttrControl;
    if (s == "<|tool_response>") eog_tool_response = true;
    if (s == "</s>") eog_s = id;
  }
  // llama.cpp's Gemma 4 workaround: with `<|tool_response>` an end-of-generation token, `</s>`
  // (an HTML strike-through tag in this vocabulary) goes back to being ordinary text.
  if (eog_tool_response && eog_s >= 0) attr[eog_s] = kAttrNormal;

  t.is_control.assign(n, 0);
  t.render_raw.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    t.is_control[i] = (attr[i] & (kAttrControl | kAttrUnknown)) != 0;
    t.render_raw[i] = (attr[i] & (kAttrControl | kAttrUserDefined)) != 0;
  }
  t.build_specials(attr);
  impl_ = std::move(impl);
}

void Tokenizer::Impl::build_specials(const std::vector<uint32_t>& attr) {
  std::vector<int32_t> order;
  for (int32_t id = 0; id < n_vocab; ++id)
    if (attr[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) order.push_back(id);
  // Same call as llama.cpp (std::sort, not stable_sort, on the same ascending input): equal-length
  // tokens end up in the same order, which decides overlapping matches.
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return vocab.tokens[a].size() > vocab.tokens[b].size(); });
  special_rank.assign(n_vocab, -1);
  trie_root.fill(-1);
  node_special.assign(1, -1);  // node 0: the root
  for (size_t r = 0; r < order.size(); ++r) {
    const int32_t id = order[r];
    special_rank[id] = static_cast<int32_t>(r);
    const std::string& s = vocab.tokens[id];
    if (s.empty()) continue;  // llama.cpp would loop forever on it; it matches nothing here
    int32_t node = 0;
    for (size_t k = 0; k < s.size(); ++k) {
      const uint8_t b = static_cast<uint8_t>(s[k]);
      int32_t* slot;
      if (node == 0) {
        slot = &trie_root[b];
      } else {
        const uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
        slot = &trie_edges.try_emplace(key, -1).first->second;
      }
      if (*slot < 0) {
        *slot = static_cast<int32_t>(node_special.size());
        node_special.push_back(-1);
      }
      node = *slot;
    }
    if (node_special[node] < 0) node_special[node] = id;  // earlier in the order wins
  }
  has_specials = !order.empty();
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  const Impl& t = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (text.empty()) return out;

  // Special tokens, llama.cpp's way: each special token in priority order (longest first) claims
  // its leftmost occurrences that lie entirely in text not yet claimed.
  struct Hit {
    int32_t rank;
    uint32_t pos, len;
    int32_t id;
  };
  std::vector<Hit> hits;
  if (t.has_specials) {
    for (size_t p = 0; p < text.size(); ++p) {
      int32_t node = t.trie_root[static_cast<uint8_t>(text[p])];
      size_t k = p + 1;
      while (node >= 0) {
        const int32_t id = t.node_special[node];
        if (id >= 0 && (parse_special || !t.is_control[id]))
          hits.push_back(
              {t.special_rank[id], static_cast<uint32_t>(p), static_cast<uint32_t>(k - p), id});
        if (k >= text.size()) break;
        auto it =
            t.trie_edges.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[k]));
        node = it == t.trie_edges.end() ? -1 : it->second;
        ++k;
      }
    }
  }
  std::vector<Hit> taken;
  if (!hits.empty()) {
    std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
      return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos;
    });
    std::vector<uint8_t> used(text.size(), 0);
    for (const Hit& h : hits) {
      if (std::any_of(used.begin() + h.pos, used.begin() + h.pos + h.len,
                      [](uint8_t u) { return u; }))
        continue;
      std::fill(used.begin() + h.pos, used.begin() + h.pos + h.len, 1);
      taken.push_back(h);
    }
    std::sort(taken.begin(), taken.end(), [](const Hit& a, const Hit& b) { return a.pos < b.pos; });
  }
  size_t cursor = 0;
  for (const Hit& h : taken) {
    if (h.pos > cursor) t.encode_raw(text.substr(cursor, h.pos - cursor), out);
    out.push_back(h.id);
    cursor = h.pos + h.len;
  }
  if (cursor < text.size()) t.encode_raw(text.substr(cursor), out);
  return out;
}

void Tokenizer::Impl::encode_raw(std::string_view raw, std::vector<int32_t>& out) const {
  const std::string norm = normalize(raw);
  // Pre-split `[^\n]+|[\n]+` (the only regex of the GEMMA4 pre-type).
  size_t i = 0;
  while (i < norm.size()) {
    const bool nl = norm[i] == '\n';
    size_t j = i;
    while (j < norm.size() && (norm[j] == '\n') == nl) ++j;
    encode_word(std::string_view(norm).substr(i, j - i), out);
    i = j;
  }
}

void Tokenizer::Impl::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  // A run of newlines that is itself a token is emitted whole (llama.cpp PR 21343): merges alone
  // would build it differently.
  if (word.front() == '\n') {
    const int32_t id = token_of(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  thread_local std::vector<Symbol> syms;
  syms.clear();
  for (size_t off = 0; off < word.size();) {
    const size_t len = std::min(word.size() - off, utf8_len(static_cast<uint8_t>(word[off])));
    const int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(len), idx - 1,
                    off + len == word.size() ? -1 : idx + 1, lookup(word.substr(off, len))});
    off += len;
  }
  // A binary heap on a reused buffer: the priority queue of candidate merges.
  thread_local std::vector<Bigram> queue;
  queue.clear();
  auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Symbol& a = syms[l];
    const Symbol& b = syms[r];
    if (a.id < 0 || b.id < 0) return;
    const MergeTable::Value* m = merges.get(MergeTable::key(a.id, b.id));
    if (!m) return;
    queue.push_back({m->rank, l, r, a.n + b.n});
    std::push_heap(queue.begin(), queue.end(), BigramAfter{});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) try_add(i - 1, i);
  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), BigramAfter{});
    const Bigram bg = queue.back();
    queue.pop_back();
    Symbol& a = syms[bg.left];
    Symbol& b = syms[bg.right];
    // Stale when either side changed since it was queued (llama.cpp compares the texts; symbol
    // lengths only grow, so comparing lengths is the same test).
    if (a.n == 0 || b.n == 0 || a.n + b.n != bg.n) continue;
    a.id = merges.get(MergeTable::key(a.id, b.id))->result;
    a.n += b.n;
    b.n = 0;
    a.next = b.next;
    if (b.next >= 0) syms[b.next].prev = bg.left;
    try_add(a.prev, bg.left);
    try_add(bg.left, a.next);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) {
    const Symbol& s = syms[i];
    const int32_t id = s.id >= 0 && s.id < n_vocab ? s.id : -1;
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (size_t k = 0; k < s.n; ++k) {
      const int32_t bt = byte_token[static_cast<uint8_t>(word[s.start + k])];
      if (bt >= 0) out.push_back(bt);  // llama.cpp drops a byte without a token silently
    }
  }
}

std::string Tokenizer::piece(int32_t id) const {
  const Impl& t = *impl_;
  if (id < 0 || id >= t.n_vocab)
    throw EngineError("token id " + std::to_string(id) + " is outside the vocabulary of " +
                      std::to_string(t.n_vocab) + " tokens");
  const std::string& s = t.vocab.tokens[id];
  if (t.vocab.types[id] == TokenType::Byte)
    return std::string(1, static_cast<char>(hex_digit(s[3]) * 16 + hex_digit(s[4])));
  if (t.render_raw[id]) return s;
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      out.push_back(' ');
      i += kSpaceMark.size();
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += piece(id);
  return out;
}

int32_t Tokenizer::special(std::string_view s) const {
  const int32_t id = impl_->token_of(s);
  if (id < 0) throw EngineError("vocabulary has no token `" + std::string(s) + "`");
  return id;
}

const Vocab& Tokenizer::vocab() const { return impl_->vocab; }

std::string StreamingDetokenizer::push(int32_t id) {
  pending_ += tok_->piece(id);
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const int r = utf8_check(pending_, i);
    if (r == 0) break;  // wait for the rest of the character
    if (r > 0) {
      out.append(pending_, i, r);
      i += r;
    } else {
      out.append(kReplacement);
      i += -r;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamingDetokenizer::flush() {
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const int r = utf8_check(pending_, i);
    if (r > 0) {
      out.append(pending_, i, r);
      i += r;
    } else {
      out.append(kReplacement);
      i = r == 0 ? pending_.size() : i + (-r);
    }
  }
  pending_.clear();
  return out;
}

}  // namespace rawflow
