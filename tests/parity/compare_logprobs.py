#!/usr/bin/python3
"""Compares two log-probability dumps (raw float32 LE, `vocab` natural-log probabilities per
prompt position, as written by `rawflow generate --logprobs-out` and llama_logprobs.mjs).

Usage: compare_logprobs.py A.f32 B.f32 --vocab V [--max-abs X] [--max-mean X]
           [--min-argmax P] [--ignore-ids 258882,258883] [--reference a|b]

A is the reference (llama.cpp), B the candidate (rawflow) unless --reference says otherwise;
only the entropy/margin report depends on which is which, every check is symmetric.
Prints the number of positions, max and mean |delta| over entries finite on both sides,
argmax agreement, and the reference's mean entropy and top-1 margin: a parity claim is only
as strong as the distributions it ran at (near-uniform rows make every implementation
"agree"; near-one-hot rows make the argmax trivial), so both are always printed.
Exit status: 0 all bounds hold, 1 a bound failed, 2 bad input.
"""

import argparse
import sys

import numpy as np

# A probability below e^-30 (~1e-13) is negligible next to float32 rounding of the rest of
# the row, so an implementation that flushes it to zero (-inf) still agrees in substance.
NEGLIGIBLE_LOGPROB = -30.0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="reference log-probs (float32 LE rows)")
    parser.add_argument("b", help="candidate log-probs (float32 LE rows)")
    parser.add_argument("--vocab", type=int, required=True, help="row length (vocabulary size)")
    parser.add_argument("--max-abs", type=float, help="fail if max |delta| exceeds this")
    parser.add_argument("--max-mean", type=float, help="fail if mean |delta| exceeds this")
    parser.add_argument("--min-argmax", type=float, help="fail if argmax agreement %% is below this")
    parser.add_argument("--ignore-ids", default="", help="comma list of ids to drop before comparing")
    parser.add_argument("--reference", choices=("a", "b"), default="a", help="which file is the reference")
    return parser.parse_args(argv)


def load_rows(path, vocab):
    try:
        flat = np.fromfile(path, dtype="<f4")
    except OSError as err:
        raise SystemExit(f"compare_logprobs: cannot read {path}: {err}") from None
    if flat.size == 0 or flat.size % vocab != 0:
        print(f"compare_logprobs: {path}: {flat.size} floats is not a positive multiple of vocab {vocab}",
              file=sys.stderr)
        sys.exit(2)
    rows = flat.reshape(-1, vocab).astype(np.float64)
    if np.isnan(rows).any() or np.isposinf(rows).any():
        bad = np.argwhere(np.isnan(rows) | np.isposinf(rows))[0]
        print(f"compare_logprobs: {path}: NaN or +inf at position {bad[0]}, id {bad[1]}", file=sys.stderr)
        sys.exit(2)
    return rows


def renormalise(rows):
    """log-softmax of log-probs over the columns kept; -inf stays -inf."""
    top = rows.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return rows - (top + np.log(np.exp(rows - top).sum(axis=1, keepdims=True)))


def drop_ignored(rows, ignore_ids, vocab):
    # rawflow forces suppressed ids (<image|>, <audio|>) to -inf, so its remaining mass sums to 1;
    # llama.cpp does so only when the GGUF carries tokenizer.ggml.suppress_tokens, otherwise those
    # ids keep their probability and every other entry is lower by log(1 - p_suppressed).
    # Dropping the ids on both sides and renormalising compares the conditional distribution
    # given "not a suppressed id", which both implementations define identically either way.
    if not ignore_ids:
        return rows
    keep = np.ones(vocab, dtype=bool)
    keep[[i for i in ignore_ids if i < vocab]] = False
    return renormalise(rows[:, keep])


def entropy_and_margin(rows):
    p = np.exp(rows)
    with np.errstate(invalid="ignore"):
        plogp = np.where(p > 0, p * rows, 0.0)
    entropy = -plogp.sum(axis=1)
    top2 = np.sort(rows, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    return entropy, margin


def main(argv):
    args = parse_args(argv)
    if args.vocab <= 0:
        print("compare_logprobs: --vocab must be positive", file=sys.stderr)
        return 2
    try:
        ignore_ids = sorted({int(s) for s in args.ignore_ids.split(",") if s.strip()})
    except ValueError:
        print(f"compare_logprobs: bad --ignore-ids '{args.ignore_ids}'", file=sys.stderr)
        return 2
    out_of_range = [i for i in ignore_ids if i >= args.vocab or i < 0]
    if out_of_range:
        print(f"compare_logprobs: note: ignore ids {out_of_range} are outside vocab {args.vocab}; skipped")

    a = load_rows(args.a, args.vocab)
    b = load_rows(args.b, args.vocab)
    if a.shape != b.shape:
        print(f"compare_logprobs: {args.a} has {a.shape[0]} positions, {args.b} has {b.shape[0]}", file=sys.stderr)
        return 2
    a = drop_ignored(a, ignore_ids, args.vocab)
    b = drop_ignored(b, ignore_ids, args.vocab)
    ref, cand = (a, b) if args.reference == "a" else (b, a)
    ref_name = args.a if args.reference == "a" else args.b
    positions = a.shape[0]

    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    both = finite_a & finite_b
    with np.errstate(invalid="ignore"):  # -inf - -inf; those entries are masked out anyway
        delta = np.where(both, np.abs(a - b), 0.0)
    n_both = int(both.sum())
    max_abs = float(delta.max()) if n_both else 0.0
    mean_abs = float(delta.sum() / n_both) if n_both else 0.0
    worst_pos, worst_id = np.unravel_index(int(delta.argmax()), delta.shape)

    # -inf on exactly one side: a real disagreement unless the finite side is negligible.
    one_sided = finite_a ^ finite_b
    finite_side = np.where(finite_a, a, b)
    inf_violations = one_sided & (finite_side >= NEGLIGIBLE_LOGPROB)
    n_one_sided, n_inf_violations = int(one_sided.sum()), int(inf_violations.sum())

    argmax_a, argmax_b = a.argmax(axis=1), b.argmax(axis=1)
    agree = argmax_a == argmax_b
    agree_pct = 100.0 * float(agree.mean())

    entropy, margin = entropy_and_margin(ref)
    cand_entropy, _ = entropy_and_margin(cand)

    kept = args.vocab - len(ignore_ids) + len(out_of_range)
    print(f"positions            {positions} (vocab {args.vocab}, compared over {kept} ids"
          f"{', ignored ' + ','.join(map(str, ignore_ids)) if ignore_ids else ''})")
    print(f"max |delta logprob|  {max_abs:.6g} (position {worst_pos}, id {worst_id}: "
          f"a {a[worst_pos, worst_id]:.6g}, b {b[worst_pos, worst_id]:.6g})")
    print(f"mean |delta logprob| {mean_abs:.6g} over {n_both} entries finite on both sides")
    print(f"-inf on one side     {n_one_sided} entries, {n_inf_violations} with the other side >= {NEGLIGIBLE_LOGPROB:g}")
    print(f"argmax agreement     {agree_pct:.2f} % ({int(agree.sum())}/{positions})")
    print(f"reference entropy    mean {entropy.mean():.4f} nats (min {entropy.min():.4f}, max {entropy.max():.4f});"
          f" candidate mean {cand_entropy.mean():.4f}  [reference = {ref_name}]")
    print(f"reference top-1 margin mean {margin.mean():.4f} nats (min {margin.min():.4g}, median {np.median(margin):.4f})")
    if not agree.all():
        bad = np.flatnonzero(~agree)[:10]
        detail = ", ".join(f"{p}: a {argmax_a[p]} b {argmax_b[p]} margin {margin[p]:.3g}" for p in bad)
        print(f"argmax differs at    {detail}{' ...' if (~agree).sum() > 10 else ''}")
    if n_inf_violations:
        pos, tok = np.argwhere(inf_violations)[0]
        print(f"first -inf violation position {pos}, id {tok}: a {a[pos, tok]:.6g}, b {b[pos, tok]:.6g}")

    failures = []
    if args.max_abs is not None and max_abs > args.max_abs:
        failures.append(f"max |delta| {max_abs:.6g} > {args.max_abs:g}")
    if args.max_mean is not None and mean_abs > args.max_mean:
        failures.append(f"mean |delta| {mean_abs:.6g} > {args.max_mean:g}")
    if args.min_argmax is not None and agree_pct < args.min_argmax:
        failures.append(f"argmax agreement {agree_pct:.2f} % < {args.min_argmax:g} %")
    if n_inf_violations:
        failures.append(f"{n_inf_violations} entries are -inf on one side and >= {NEGLIGIBLE_LOGPROB:g} on the other")
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("OK: all bounds hold")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
