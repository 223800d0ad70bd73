#pragma once
// Tables of configuration keys: each key of a YAML map is one row — key, member, range or
// choices, an optional default — and the table drives reading (type and range checks, required
// keys, unknown keys with the allowed list and a did-you-mean), the `--print-config` dump and the
// list of documented keys. Only rules that relate several keys are hand-written: a table's `rule`.
//
//   const FieldTable<Watchdog> kWatchdog = {{
//       number("open_timeout_s", &Watchdog::open_timeout_s, {0, 3600, true}),
//       number("read_timeout_s", &Watchdog::read_timeout_s, {0, 3600, true}),
//   }};
//
// A key's default is its member's initializer in the struct, unless the row says otherwise
// (`.defaults_to(1)`, for a default that depends on which table reads the struct).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/yaml_reader.h"

namespace rawflow::yaml_config {

template <class S>
struct FieldTable;

// One key of a map whose values fill a struct S.
template <class S>
struct Field {
  std::string key;
  // Reads and checks the key's value into `s`; true when it was given and is valid.
  std::function<bool(MapReader&, S&)> read;
  // Writes the value (after `key:`) for the dump; empty for keys that are only read.
  std::function<void(YAML::Emitter&, const S&)> dump;
  // Optional parts; empty means "no": no table default, always applies, never required, always
  // dumped.
  std::function<void(S&)> set_default;
  std::function<bool(const S&)> applies;  // decided by the rows read before this one
  std::function<bool(const S&)> required;
  std::function<bool(const S&)> dumped;
  // Without a valid value here the later keys are not read (a task's kind decides which apply).
  bool selects_keys = false;
  // Keys below this one, as written in docs/config.md: ".initial_delay_s" for a map's keys,
  // "[].name" for a list's items' keys.
  std::vector<std::string> below;

  Field() = default;
  explicit Field(std::string k) : key(std::move(k)) {}
  // A row written for a base struct serves a table of a struct derived from it (TaskDraft's table
  // holds TaskConfig's rows).
  template <class Base>
  requires(std::is_base_of_v<Base, S> && !std::is_same_v<Base, S>) Field(const Field<Base>& f)
      : key(f.key), selects_keys(f.selects_keys), below(f.below) {
    read = [g = f.read](MapReader& r, S& s) { return g(r, s); };
    if (f.dump) dump = [g = f.dump](YAML::Emitter& out, const S& s) { g(out, s); };
    if (f.set_default) set_default = [g = f.set_default](S& s) { g(s); };
    if (f.applies) applies = [g = f.applies](const S& s) { return g(s); };
    if (f.required) required = [g = f.required](const S& s) { return g(s); };
    if (f.dumped) dumped = [g = f.dumped](const S& s) { return g(s); };
  }

  Field required_always() const {
    return required_if([](const S&) { return true; });
  }
  Field required_if(std::function<bool(const S&)> p) const { return with(&Field::required, p); }
  Field applies_if(std::function<bool(const S&)> p) const { return with(&Field::applies, p); }
  Field dumped_if(std::function<bool(const S&)> p) const { return with(&Field::dumped, p); }
  Field not_dumped() const {
    Field f = *this;
    f.dump = nullptr;
    return f;
  }
  Field selecting_keys() const {
    Field f = *this;
    f.selects_keys = true;
    return f;
  }

 private:
  using Predicate = std::function<bool(const S&)>;
  Field with(Predicate Field::*slot, Predicate p) const {
    Field f = *this;
    f.*slot = std::move(p);
    return f;
  }
};

// A row that knows its member's type, for the modifiers that need it.
template <class S, class T>
struct TypedField : Field<S> {
  T S::*member;

  TypedField(std::string key, T S::*m) : Field<S>(std::move(key)), member(m) {}

  // This table's default for the member, set before the key is read.
  TypedField defaults_to(T value) const {
    TypedField f = *this;
    f.set_default = [m = member, value](S& s) { s.*m = value; };
    return f;
  }
  // A check of the value alone beyond type and range: "" when fine, else what is wrong.
  TypedField checked_by(std::function<std::string(const T&)> problem) const {
    TypedField f = *this;
    f.read = [g = this->read, m = member, key = this->key, problem](MapReader& r, S& s) {
      if (!g(r, s)) return false;
      const std::string why = problem(s.*m);
      if (!why.empty()) r.fail(key, why);
      return why.empty();
    };
    return f;
  }
};

// The rows of one map, in the order keys are listed in messages and in the dump.
template <class S>
struct FieldTable {
  std::vector<Field<S>> fields;
  // Relations between this map's keys, run after every key is read and the unknown ones are
  // reported (r.ok() says whether all were fine, r.values_ok() the same with unknown keys aside).
  // Hand-written: what a row cannot say.
  std::function<void(MapReader&, S&)> rule = nullptr;
  // For keys of rows that do not apply to this struct: why ("to a describe task").
  std::function<std::string(const S&)> not_applicable = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Reading and dumping with a table.

// Reads every row that applies into `s` (defaults, required keys, checks); returns the keys of
// the rows that do not apply, for MapReader::finish.
template <class S>
std::vector<std::string> read_fields(MapReader& r, const std::vector<Field<S>>& fields, S& s) {
  std::vector<std::string> not_applicable;
  for (size_t i = 0; i < fields.size(); ++i) {
    const Field<S>& f = fields[i];
    if (f.applies && !f.applies(s)) {
      not_applicable.push_back(f.key);
      continue;
    }
    if (f.set_default) f.set_default(s);
    if (f.required && f.required(s)) r.require(f.key);
    if (!f.read(r, s) && f.selects_keys) {
      for (size_t j = i + 1; j < fields.size(); ++j) r.declare(fields[j].key);
      return {};
    }
  }
  return not_applicable;
}

// One map: its rows, then its unknown keys, then its rule.
template <class S>
void read_section(MapReader r, const FieldTable<S>& table, S& s) {
  const std::vector<std::string> not_applicable = read_fields(r, table.fields, s);
  r.finish(not_applicable, table.not_applicable ? table.not_applicable(s) : std::string());
  if (table.rule) table.rule(r, s);
}

// `key: value` for every row that applies and is dumped, in table order.
template <class S>
void dump_fields(YAML::Emitter& out, const FieldTable<S>& table, const S& s) {
  for (const Field<S>& f : table.fields) {
    if (!f.dump || (f.applies && !f.applies(s)) || (f.dumped && !f.dumped(s))) continue;
    out << YAML::Key << f.key << YAML::Value;
    f.dump(out, s);
  }
}

// Every key of the table and below, relative to its map ("reconnect.max_attempts",
// "streams[].name"), each once, in table order.
template <class S>
std::vector<std::string> key_paths(const FieldTable<S>& table) {
  std::vector<std::string> keys;
  const auto add = [&](std::string k) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(std::move(k));
  };
  for (const Field<S>& f : table.fields) {
    add(f.key);
    for (const std::string& b : f.below) add(f.key + b);
  }
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Rows. `M` is the struct that has the member; a table of a struct derived from M takes the row.

template <class M, class T>
requires std::is_floating_point_v<T> TypedField<M, T> number(std::string key, T M::*m,
                                                             Range range) {
  TypedField<M, T> f(std::move(key), m);
  f.read = [key = f.key, m, range](MapReader& r, M& s) {
    double v = 0;
    if (!r.number(key, v, range)) return false;
    s.*m = static_cast<T>(v);
    return true;
  };
  f.dump = [m](YAML::Emitter& out, const M& s) { out << format_number(s.*m); };
  return f;
}

template <class M, class T>
requires(std::is_integral_v<T>&& std::is_signed_v<T>) TypedField<M, T> integer(std::string key,
                                                                               T M::*m, int64_t lo,
                                                                               int64_t hi) {
  TypedField<M, T> f(std::move(key), m);
  f.read = [key = f.key, m, lo, hi](MapReader& r, M& s) {
    int64_t v = 0;
    if (!r.integer(key, v, lo, hi)) return false;
    s.*m = static_cast<T>(v);
    return true;
  };
  f.dump = [m](YAML::Emitter& out, const M& s) { out << s.*m; };
  return f;
}

template <class M>
TypedField<M, uint64_t> unsigned_integer(std::string key, uint64_t M::*m) {
  TypedField<M, uint64_t> f(std::move(key), m);
  f.read = [key = f.key, m](MapReader& r, M& s) { return r.unsigned64(key, s.*m); };
  f.dump = [m](YAML::Emitter& out, const M& s) { out << s.*m; };
  return f;
}

// An integer from a fixed list (image budgets).
template <class M>
TypedField<M, int> integer_in(std::string key, int M::*m, std::vector<int> allowed) {
  TypedField<M, int> f(std::move(key), m);
  f.read = [key = f.key, m, allowed](MapReader& r, M& s) {
    return r.integer_in(key, s.*m, allowed);
  };
  f.dump = [m](YAML::Emitter& out, const M& s) { out << s.*m; };
  return f;
}

template <class M>
TypedField<M, bool> boolean(std::string key, bool M::*m) {
  TypedField<M, bool> f(std::move(key), m);
  f.read = [key = f.key, m](MapReader& r, M& s) { return r.boolean(key, s.*m); };
  f.dump = [m](YAML::Emitter& out, const M& s) { out << s.*m; };
  return f;
}

template <class M>
TypedField<M, std::string> text(std::string key, std::string M::*m, TextRule rule = TextRule::Any) {
  TypedField<M, std::string> f(std::move(key), m);
  f.read = [key = f.key, m, rule](MapReader& r, M& s) { return r.text(key, s.*m, rule); };
  f.dump = [m](YAML::Emitter& out, const M& s) { out << s.*m; };
  return f;
}

// One of named values; an unknown name gets the list and a did-you-mean.
template <class M, class E>
TypedField<M, E> choice(std::string key, E M::*m, Choices<E> options) {
  std::vector<std::string> names;
  std::vector<E> values;
  for (const auto& [name, value] : options) {
    names.emplace_back(name);
    values.push_back(value);
  }
  TypedField<M, E> f(std::move(key), m);
  f.read = [key = f.key, m, names, values](MapReader& r, M& s) {
    size_t i = 0;
    if (!r.choice(key, i, names)) return false;
    s.*m = values[i];
    return true;
  };
  f.dump = [m, names, values](YAML::Emitter& out, const M& s) {
    const auto it = std::find(values.begin(), values.end(), s.*m);
    out << (it == values.end() ? std::string() : names[it - values.begin()]);
  };
  return f;
}

// A list of names, dumped on one line.
template <class M>
TypedField<M, std::vector<std::string>> name_list(std::string key, std::vector<std::string> M::*m) {
  TypedField<M, std::vector<std::string>> f(std::move(key), m);
  f.read = [key = f.key, m](MapReader& r, M& s) { return r.names(key, s.*m); };
  f.dump = [m](YAML::Emitter& out, const M& s) { out << YAML::Flow << s.*m; };
  return f;
}

// A key whose reading or dumping no other row describes (a value that fills two members, a list
// whose items start from other values). `dump` may be empty.
template <class M>
Field<M> custom(std::string key, std::function<bool(MapReader&, M&)> read,
                std::function<void(YAML::Emitter&, const M&)> dump) {
  Field<M> f(std::move(key));
  f.read = std::move(read);
  f.dump = std::move(dump);
  return f;
}

// A nested map read by its own table, inside `get(s)` (a member, or `s` itself for a map that
// groups some of the struct's members; `get` takes M& and const M&). With `on_when_present`, the
// map's presence turns that member on (`stdout:` alone enables the sink) and a map that is off is
// not dumped.
template <class M, class Sub, class Get>
Field<M> nested_map(std::string key, Get get, const FieldTable<Sub>& table,
                    bool Sub::*on_when_present) {
  Field<M> f(std::move(key));
  f.read = [key = f.key, get, &table, on_when_present](MapReader& r, M& s) {
    MapReader sub = r.map(key);
    Sub& target = get(s);
    if (on_when_present) {
      if (!sub.present()) return false;
      target.*on_when_present = true;
    }
    const bool present = sub.present();
    read_section(std::move(sub), table, target);
    return present;
  };
  f.dump = [get, &table](YAML::Emitter& out, const M& s) {
    out << YAML::BeginMap;
    dump_fields(out, table, get(s));
    out << YAML::EndMap;
  };
  if (on_when_present) {
    f.dumped = [get, on_when_present](const M& s) { return get(s).*on_when_present; };
  }
  for (const std::string& k : key_paths(table)) f.below.push_back("." + k);
  return f;
}

template <class M, class Sub>
Field<M> section(std::string key, Sub M::*m, const FieldTable<Sub>& table,
                 bool Sub::*on_when_present = nullptr) {
  return nested_map<M, Sub>(
      std::move(key), [m](auto& s) -> auto& { return s.*m; }, table, on_when_present);
}

// A nested map of keys that fill members of the enclosing struct itself.
template <class M>
Field<M> group(std::string key, const FieldTable<M>& table, bool M::*on_when_present = nullptr) {
  return nested_map<M, M>(
      std::move(key), [](auto& s) -> auto& { return s; }, table, on_when_present);
}

// A list of maps, each item read by `read_item` (which may start it from other values of `s`)
// and dumped by `item_table`, a table of Item or of a struct derived from it.
// M is given (`list<ConfigDraft>(...)`): the member may be of a base of M.
template <class M, class Owner, class Item, class D>
Field<M> list(std::string key, std::vector<Item> Owner::*m, std::string what, std::string if_empty,
              const FieldTable<D>& item_table,
              std::type_identity_t<std::function<Item(MapReader, const M&)>> read_item) {
  static_assert(std::is_base_of_v<Owner, M> && std::is_base_of_v<Item, D>);
  Field<M> f(std::move(key));
  f.read = [key = f.key, m, what, if_empty, read_item](MapReader& r, M& s) {
    const YAML::Node items = r.list(key, what);
    if (!items.IsDefined()) return false;
    if (items.size() == 0) r.fail(key, if_empty);
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string path = r.path_of(key) + "[" + std::to_string(i) + "]";
      (s.*m).push_back(read_item(MapReader(r.context(), items[i], path), s));
    }
    return true;
  };
  f.dump = [m, &item_table](YAML::Emitter& out, const M& s) {
    out << YAML::BeginSeq;
    for (const Item& item : s.*m) {
      D d;
      static_cast<Item&>(d) = item;
      out << YAML::BeginMap;
      dump_fields(out, item_table, d);
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  };
  for (const std::string& k : key_paths(item_table)) f.below.push_back("[]." + k);
  return f;
}

// ---------------------------------------------------------------------------------------------
// A table on its own: one YAML map in, its dump out. What the configuration does for each of its
// maps, for tests and for trying a new table (tests/test_config_docs.cpp).

template <class S>
S read_map(const std::string& yaml, const std::string& name, const FieldTable<S>& table) {
  Context cx{Document(name, {}), {}, {}};
  try {
    cx.doc.root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(name + ": YAML syntax error: " + e.msg);
  }
  S s{};
  read_section(MapReader(cx, cx.doc.root, ""), table, s);
  cx.errors.throw_if_any();
  return s;
}

template <class S>
std::string dump_map(const FieldTable<S>& table, const S& s) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  dump_fields(out, table, s);
  out << YAML::EndMap;
  return out.c_str();
}

}  // namespace rawflow::yaml_config
