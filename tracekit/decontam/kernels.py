"""The numba-compiled loops of decontamination's whole-item and rephrase checks, in one module.

numba caches each compiled function keyed on its own source file only, so these kernels call no
compiled function of another module (dedup's kernels live in `tracekit/dedup/kernels.py` for the
same reason); the few hash helpers they need are defined here.

**Tokens.** `scan_tokens` reads a text's UTF-8 bytes (ASCII letters lowercased; other characters
are lowercased and NFKC-normalised by the caller first, see `tracekit.decontam.features`) and
writes one token per:
- run of letters (`word`; one letter: `letter`, a variable as often as not): an entry of the rewrite table may turn it into a number (`three` -> 3)
  for the features; a word of 4+ letters ending in one `s` loses it in the features (`eggs` -> egg);
- run of digits (`number`), with `,ddd` thousands groups and `.digits` decimals folded in and
  written canonically (`1,000` = `1000`, `02` = `2`, `2.50` = `2.5`);
- LaTeX command (`\\frac`): the rewrite table maps aliases (`\\dfrac` -> `\\frac`) and drops layout
  commands (`\\left`, `\\displaystyle`, ...); a backslash before a non-letter is dropped with it;
- operator character (`+ - * / ^ = < > ( ) [ ] | ! %`);
- non-ASCII character (each one a token: CJK is written without spaces).
Everything else (spaces, `. , ; : ? $ { } ' "` ...) separates tokens. Each token has an exact hash
(whole-item matching) and a feature hash (rephrase similarity; 0 = not a feature: operators).

**Batch scan.** `scan_rows` runs per text: tokens, then (1) every short benchmark item whose token
sequence occurs in the text with no math continuing it on either side, (2) the rephrase
candidates: the benchmark items sharing weighted features with the text, scored by weighted
containment (share of the item's feature weight found in the text), the best `topk` kept with
how their numbers compare and the share of the item's math-token pairs (`x ^`, `^ 2`: its
formulas) found in the text.
"""

from __future__ import annotations

import numpy as np

from tracekit.dedup.kernels import compiled

_FNV = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_U33 = np.uint64(33)
_MIX = np.uint64(0x9E3779B97F4A7C15)
# seeds that keep the token classes apart (a command `\\sqrt` is not the word `sqrt`)
SEED_WORD = np.uint64(1)
SEED_NUMBER = np.uint64(2)
SEED_COMMAND = np.uint64(3)
SEED_OPERATOR = np.uint64(4)
SEED_OTHER = np.uint64(5)

KIND_WORD, KIND_NUMBER, KIND_COMMAND, KIND_OPERATOR, KIND_OTHER, KIND_LETTER = 0, 1, 2, 3, 4, 5
# rewrite kinds: the feature of a word becomes a number; a command becomes another or is dropped
REWRITE_NUMBER, REWRITE_COMMAND = 1, 2

_LETTER = np.zeros(256, np.bool_)
_LETTER[65:91] = _LETTER[97:123] = True
_DIGIT = np.zeros(256, np.bool_)
_DIGIT[48:58] = True
_OPERATOR = np.zeros(256, np.bool_)
for _c in b"+-*/^=<>()[]|!%":
    _OPERATOR[_c] = True
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[65:91] += 32


@compiled
def _fmix(h):  # type: ignore[no-untyped-def]
    h ^= h >> _U33
    h *= _FMIX_1
    h ^= h >> _U33
    h *= _FMIX_2
    h ^= h >> _U33
    return h


@compiled
def _step(h, b):  # type: ignore[no-untyped-def]
    return (h ^ np.uint64(b)) * _PRIME


@compiled
def _final(h, seed, length):  # type: ignore[no-untyped-def]
    out = _fmix(h ^ (seed * _MIX) ^ np.uint64(length))
    return out if out != np.uint64(0) else np.uint64(1)  # 0 means "no token / no feature"


@compiled
def _find(keys, key):  # type: ignore[no-untyped-def]
    """Index of `key` in the sorted array `keys`, or -1."""
    lo, hi = 0, len(keys)
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < len(keys) and keys[lo] == key else -1


@compiled
def scan_tokens(data, lo, hi, rw_keys, rw_vals, rw_kinds, tok, feat, kind):  # type: ignore[no-untyped-def]
    """Tokens of `data[lo:hi]` into `tok`/`feat`/`kind` (room for hi - lo + 1); returns their count."""
    n = 0
    i = lo
    while i < hi:
        c = data[i]
        if _LETTER[c]:
            h = _FNV
            before_last = _FNV
            start = i
            last = np.uint8(0)
            prev = np.uint8(0)
            while i < hi and _LETTER[data[i]]:
                before_last = h
                prev = last
                last = _LOWER[data[i]]
                h = _step(h, last)
                i += 1
            length = i - start
            t = _final(h, SEED_WORD, length)
            tok[n] = t
            kind[n] = KIND_LETTER if length == 1 and last != 97 else KIND_WORD  # `a`: an article
            f = t
            r = _find(rw_keys, t)
            if r >= 0 and rw_kinds[r] == REWRITE_NUMBER:
                f = rw_vals[r]
                kind[n] = KIND_NUMBER
            elif length >= 4 and last == 115 and prev != 115:  # plural s
                f = _final(before_last, SEED_WORD, length - 1)
            feat[n] = f
            n += 1
        elif _DIGIT[c]:
            h = _FNV
            length = 0
            while i < hi and data[i] == 48:  # leading zeros
                i += 1
            while True:
                while i < hi and _DIGIT[data[i]]:
                    h = _step(h, data[i])
                    length += 1
                    i += 1
                # thousands group: ",ddd" not followed by another digit
                if (
                    i + 3 < hi
                    and data[i] == 44
                    and _DIGIT[data[i + 1]]
                    and _DIGIT[data[i + 2]]
                    and _DIGIT[data[i + 3]]
                    and (i + 4 >= hi or not _DIGIT[data[i + 4]])
                ):
                    i += 1
                    continue
                break
            if length == 0:  # only zeros
                h = _step(h, 48)
                length = 1
            if i + 1 < hi and data[i] == 46 and _DIGIT[data[i + 1]]:  # decimals, trailing zeros dropped
                i += 1
                frac = _step(h, 46)
                frac_len = length + 1
                kept = h
                kept_len = length
                while i < hi and _DIGIT[data[i]]:
                    frac = _step(frac, data[i])
                    frac_len += 1
                    if data[i] != 48:
                        kept = frac
                        kept_len = frac_len
                    i += 1
                h = kept
                length = kept_len
            t = _final(h, SEED_NUMBER, length)
            tok[n] = t
            feat[n] = t
            kind[n] = KIND_NUMBER
            n += 1
        elif c == 92:  # backslash
            i += 1
            if i < hi and _LETTER[data[i]]:
                h = _FNV
                start = i
                while i < hi and _LETTER[data[i]]:
                    h = _step(h, data[i])  # command names are case-sensitive (\Delta, \delta)
                    i += 1
                t = _final(h, SEED_COMMAND, i - start)
                r = _find(rw_keys, t)
                if r >= 0 and rw_kinds[r] == REWRITE_COMMAND:
                    t = rw_vals[r]
                if t != np.uint64(0):
                    tok[n] = t
                    feat[n] = t
                    kind[n] = KIND_COMMAND
                    n += 1
            elif i < hi:
                i += 1  # \\, \{, \, ... : layout, dropped with the backslash
        elif _OPERATOR[c]:
            tok[n] = _final(_step(_FNV, c), SEED_OPERATOR, 1)
            feat[n] = np.uint64(0)
            kind[n] = KIND_OPERATOR
            n += 1
            i += 1
        elif c >= 128:  # one UTF-8 character
            width = 1
            if c >= 0xF0:
                width = 4
            elif c >= 0xE0:
                width = 3
            elif c >= 0xC0:
                width = 2
            h = _FNV
            end = min(hi, i + width)
            start = i
            while i < end:
                h = _step(h, data[i])
                i += 1
            t = _final(h, SEED_OTHER, i - start)
            tok[n] = t
            feat[n] = t
            kind[n] = KIND_OTHER
            n += 1
        else:
            i += 1
    return n


@compiled
def item_pairs_of_rows(tok, kind, offsets, out, counts):  # type: ignore[no-untyped-def]
    """`math_pairs` of every tokenised text (tokens packed by `offsets`), packed into `out`."""
    pos = 0
    for k in range(len(offsets) - 1):
        a, b = offsets[k], offsets[k + 1]
        m = math_pairs(tok[a:b], kind[a:b], b - a, out[pos : pos + (b - a) + 1])
        counts[k] = m
        pos += m


@compiled
def tokens_of_rows(data, offsets, rw_keys, rw_vals, rw_kinds, tok, feat, kind, counts):  # type: ignore[no-untyped-def]
    """Tokens of every text, packed: text k's are at `[sum(counts[:k]), ... + counts[k])`.

    `tok`/`feat`/`kind` need room for `offsets[-1] - offsets[0] + len(offsets)` tokens.
    """
    pos = 0
    for k in range(len(offsets) - 1):
        room = offsets[k + 1] - offsets[k] + 1
        m = scan_tokens(
            data, offsets[k], offsets[k + 1], rw_keys, rw_vals, rw_kinds,
            tok[pos : pos + room], feat[pos : pos + room], kind[pos : pos + room],
        )  # fmt: skip
        counts[k] = m
        pos += m


@compiled
def _math_kind(k):  # type: ignore[no-untyped-def]
    return k == KIND_NUMBER or k == KIND_OPERATOR or k == KIND_COMMAND  # noqa: SIM109 - numba


@compiled
def math_pairs(tok, kind, n, out):  # type: ignore[no-untyped-def]
    """Hashes of the adjacent pairs of math tokens (numbers, operators, commands, one-letter words:
    `x ^`, `^ 2`) into `out`, sorted and distinct; returns their count. A formula gives many, prose
    (`16 eggs`) none."""
    m = 0
    for t in range(n - 1):
        a, b = kind[t], kind[t + 1]
        if (_math_kind(a) or a == KIND_LETTER) and (_math_kind(b) or b == KIND_LETTER):
            out[m] = tok[t] * _MIX + tok[t + 1]
            m += 1
    if m == 0:
        return 0
    out[:m] = np.sort(out[:m])
    d = 1
    for t in range(1, m):
        if out[t] != out[d - 1]:
            out[d] = out[t]
            d += 1
    return d


@compiled
def _shared(a, lo, hi, b, m):  # type: ignore[no-untyped-def]
    """How many values of the sorted distinct `a[lo:hi]` are in the sorted distinct `b[:m]`."""
    x, y, shared = lo, 0, 0
    while x < hi and y < m:
        if a[x] == b[y]:
            shared += 1
            x += 1
            y += 1
        elif a[x] < b[y]:
            x += 1
        else:
            y += 1
    return shared


@compiled
def _compare_numbers(item_nums, lo, hi, nums, m):  # type: ignore[no-untyped-def]
    """(distinct item numbers absent from the text, text numbers beyond the item's count of each):
    both sorted, with repeats."""
    missing = 0
    extra = 0
    x, y = lo, 0
    while x < hi or y < m:
        if y >= m or (x < hi and item_nums[x] < nums[y]):
            v = item_nums[x]
            missing += 1
            while x < hi and item_nums[x] == v:
                x += 1
        elif x >= hi or nums[y] < item_nums[x]:
            v = nums[y]
            while y < m and nums[y] == v:
                extra += 1
                y += 1
        else:
            v = nums[y]
            ci = 0
            cp = 0
            while x < hi and item_nums[x] == v:
                ci += 1
                x += 1
            while y < m and nums[y] == v:
                cp += 1
                y += 1
            extra += max(0, cp - ci)
    return missing, extra


@compiled
def scan_rows(  # type: ignore[no-untyped-def]
    data, offsets, rw_keys, rw_vals, rw_kinds,
    wi_keys, wi_items, wi_off, wi_toks, wi_kinds,
    vocab, weights, post_off, post_items, item_norm, num_off, item_nums, pair_off, item_pairs,
    min_score, given, whole, cand_item, cand_score, cand_missing, cand_extra, cand_math,
):  # fmt: skip
    """Whole-item hits and rephrase candidates of each text (see the module docstring).

    With `given`, `cand_item`/`cand_score` are inputs (candidates found another way, e.g. by
    embeddings) and only their numbers and formulas are compared.

    Outputs, one row per text: `whole` (item ids, -1 padded), `cand_item`/`cand_score` (the best
    `topk` candidates at or above `min_score`, best first, -1 padded), `cand_missing` (distinct
    item numbers absent from the text), `cand_extra` (text numbers beyond the item's count of each
    value), `cand_math` (share of the item's math-token pairs found in the text; 1 without any).
    """
    n_rows = len(offsets) - 1
    longest = 0
    for k in range(n_rows):
        longest = max(longest, offsets[k + 1] - offsets[k])
    tok = np.empty(longest + 1, np.uint64)
    feat = np.empty(longest + 1, np.uint64)
    kind = np.empty(longest + 1, np.uint8)
    nums = np.empty(longest + 1, np.uint64)
    pairs = np.empty(longest + 1, np.uint64)
    n_items = len(item_norm)
    acc = np.zeros(n_items, np.float32)
    touched = np.empty(n_items, np.int32)
    stamp = np.full(len(vocab), -1, np.int64)
    topk = cand_item.shape[1]
    max_whole = whole.shape[1]
    for row in range(n_rows):
        for j in range(max_whole):
            whole[row, j] = -1
        for j in range(topk):
            if not given:
                cand_item[row, j] = -1
                cand_score[row, j] = 0.0
            cand_missing[row, j] = 0
            cand_extra[row, j] = 0
            cand_math[row, j] = 0.0
        n = scan_tokens(data, offsets[row], offsets[row + 1], rw_keys, rw_vals, rw_kinds, tok, feat, kind)
        # 1. short benchmark items found whole
        found = 0
        if len(wi_keys):
            for p in range(n - 1):
                key = tok[p] * _MIX + tok[p + 1]
                q = _find(wi_keys, key)
                if q < 0:
                    continue
                while q < len(wi_keys) and wi_keys[q] == key:
                    it = wi_items[q]
                    q += 1
                    a, b = wi_off[it], wi_off[it + 1]
                    if p + (b - a) > n:
                        continue
                    same = True
                    for t in range(b - a):
                        if tok[p + t] != wi_toks[a + t]:
                            same = False
                            break
                    if not same:
                        continue
                    # a formula that starts or ends the item must not go on in the text (`+ 1`)
                    end = p + (b - a)
                    if end < n and _math_kind(wi_kinds[b - 1]) and _math_kind(kind[end]):
                        continue
                    if p > 0 and _math_kind(wi_kinds[a]) and _math_kind(kind[p - 1]):
                        continue
                    dup = False
                    for j in range(found):
                        dup |= whole[row, j] == it
                    if not dup and found < max_whole:
                        whole[row, found] = it
                        found += 1
        # 2. rephrase candidates: weighted containment of each item's features in the text
        n_nums = 0
        n_touched = 0
        for t in range(n):
            f = feat[t]
            if f == np.uint64(0):
                continue
            if kind[t] == KIND_NUMBER:
                nums[n_nums] = f
                n_nums += 1
            if given:
                continue
            v = _find(vocab, f)
            if v < 0 or stamp[v] == row:
                continue
            stamp[v] = row
            w = weights[v]
            if w <= 0:
                continue
            for q in range(post_off[v], post_off[v + 1]):
                it = post_items[q]
                if acc[it] == 0:
                    touched[n_touched] = it
                    n_touched += 1
                acc[it] += w
        have = 0
        if given:
            while have < topk and cand_item[row, have] >= 0:
                have += 1
        for j in range(n_touched):
            it = touched[j]
            s = acc[it] / item_norm[it]
            acc[it] = 0
            if s < min_score:
                continue
            # insert into the row's best-first list
            pos = have if have < topk else topk
            while pos > 0 and cand_score[row, pos - 1] < s:
                pos -= 1
            if pos >= topk:
                continue
            last = min(have, topk - 1)
            for m in range(last, pos, -1):
                cand_item[row, m] = cand_item[row, m - 1]
                cand_score[row, m] = cand_score[row, m - 1]
            cand_item[row, pos] = it
            cand_score[row, pos] = s
            have = min(have + 1, topk)
        if have == 0:
            continue
        nums_sorted = np.sort(nums[:n_nums])
        n_pairs = math_pairs(tok, kind, n, pairs)
        for j in range(have):
            it = cand_item[row, j]
            cand_missing[row, j], cand_extra[row, j] = _compare_numbers(
                item_nums, num_off[it], num_off[it + 1], nums_sorted, n_nums
            )
            a, b = pair_off[it], pair_off[it + 1]
            cand_math[row, j] = 1.0 if b == a else _shared(item_pairs, a, b, pairs, n_pairs) / (b - a)
