"""Every numba-compiled loop of dedup and decontamination, in one module.

numba caches each compiled function on disk keyed by its own source file only: a kernel that calls
a function of another module keeps its old machine code when only that other module changes. With
all kernels in this file, any edit here recompiles all of them.

Byte-level text scanning: a pure-ASCII text is normalised, split into words and hashed in one
loop (`scan_ascii_words`); a text with non-ASCII characters is first normalised by
`tracekit.dedup.ngrams.normalized_words` (polars), its words joined with single spaces, and that
string is split on spaces (`scan_split_words`). Both use the same byte hash, so an ASCII text
gives the same word hashes either way (tests check it). Then MinHash signatures (`signature_row`,
see `tracekit.dedup.minhash`) and LSH linking (`lsh_link`). The functions are plain Python
compiled by numba; without numba they run as Python (same results, slow).
"""

from __future__ import annotations

import numpy as np

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for n-gram mixing
_LOW32 = np.uint64(0xFFFFFFFF)
_SEED = np.uint64(0xCBF29CE484222325)
_BLOCK_MUL = np.uint64(0x9E3779B97F4A7C15)
_FMIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_U8 = np.uint64(8)
_U32 = np.uint64(32)
_U33 = np.uint64(33)
_U64 = np.uint64(64)
# byte tables: lowercase (ASCII), word byte (ASCII letter/digit, or any byte of a multi-byte character)
_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[65:91] += 32
_WORD_BYTE = np.zeros(256, np.bool_)
_WORD_BYTE[48:58] = _WORD_BYTE[65:91] = _WORD_BYTE[97:123] = _WORD_BYTE[128:] = True
_LETTER = np.zeros(256, np.bool_)
_LETTER[65:91] = _LETTER[97:123] = True
_DIGIT = np.zeros(256, np.bool_)
_DIGIT[48:58] = True
_SPACE = np.zeros(256, np.bool_)
_SPACE[9:14] = _SPACE[32] = True  # what Unicode White_Space (regex \s) holds in ASCII
_SPACE_U8 = _SPACE.astype(np.uint8)
_WORD_LOWER = np.where(_WORD_BYTE, _LOWER, 0).astype(np.uint8)  # a word byte lowercased, else 0
_EXACT_BYTE = _LOWER.copy()  # the byte written for the exact key: lowercase, whitespace as " "
_EXACT_BYTE[_SPACE] = 32


def compiled(fn):  # type: ignore[no-untyped-def]
    try:
        import numba
    except ImportError:  # pragma: no cover - pure-Python fallback
        return fn
    return numba.njit(cache=True, nogil=True)(fn)


@compiled
def fmix64(h):  # type: ignore[no-untyped-def]
    """MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over the output."""
    h ^= h >> _U33
    h *= _FMIX_1
    h ^= h >> _U33
    h *= _FMIX_2
    h ^= h >> _U33
    return h


@compiled
def _mix_block(h, block):  # type: ignore[no-untyped-def]
    # one multiply per 8 bytes; the xor-shift folds high bits down so every bit reaches the output
    h = (h ^ block) * _BLOCK_MUL
    return h ^ (h >> _U32)


@compiled
def hash_bytes(data, lo, hi):  # type: ignore[no-untyped-def]
    """64-bit hash of `data[lo:hi]` with ASCII letters lowercased.

    Bytes are packed little-endian into 64-bit blocks, one multiply per block.
    """
    h = _SEED
    acc = np.uint64(0)
    k = 0
    for i in range(lo, hi):
        acc |= np.uint64(_LOWER[data[i]]) << np.uint64(8 * k)
        k += 1
        if k == 8:
            h = _mix_block(h, acc)
            acc = np.uint64(0)
            k = 0
    return fmix64(_mix_block(_mix_block(h, acc), np.uint64(hi - lo)))


@compiled
def scan_ascii_words(data, lo, hi, out):  # type: ignore[no-untyped-def]
    """Hash the words of an ASCII text `data[lo:hi]` into `out`; return (word count, numbers).

    Same words as `normalized_words` for ASCII: lowercase, `\\command` names removed, a word is a
    run of letters and digits. Each word is hashed as it is scanned, with `hash_bytes`' result.
    `numbers` is the order-free hash of the multiset of numbers (`\\d+(?:\\.\\d+)?`, 0: none), the
    same as `sketch_split_rows` gives for the numbers joined with spaces: a number is a digit run
    inside a word, and one that ends its word takes a `.digits` that follows.
    """
    n = 0
    numbers = np.uint64(0)
    taken = lo  # digits before this are the decimals of a number already counted
    i = lo
    while i < hi:
        v = _WORD_LOWER[data[i]]
        if v != 0:  # a word starts: pack its lowercase bytes 8 to a block, as hash_bytes does
            start = i
            h = _SEED
            acc = np.uint64(0)
            shift = np.uint64(0)
            digits = False
            while True:
                acc |= np.uint64(v) << shift
                shift += _U8
                digits |= v < 58  # lowercase word bytes: digits are below 58, letters from 97
                if shift == _U64:
                    h = _mix_block(h, acc)
                    acc = np.uint64(0)
                    shift = np.uint64(0)
                i += 1
                if i >= hi:
                    break
                v = _WORD_LOWER[data[i]]
                if v == 0:
                    break
            out[n] = fmix64(_mix_block(_mix_block(h, acc), np.uint64(i - start)))
            n += 1
            if digits:  # its numbers: the digit runs of the word
                j = max(start, taken)
                while j < i:
                    if not _DIGIT[data[j]]:
                        j += 1
                        continue
                    first = j
                    while j < i and _DIGIT[data[j]]:
                        j += 1
                    last = j
                    if j == i and last + 1 < hi and data[last] == 46 and _DIGIT[data[last + 1]]:
                        last += 1  # the decimals open the next word
                        while last < hi and _DIGIT[data[last]]:
                            last += 1
                        taken = last
                    numbers += fmix64(hash_bytes(data, first, last))
        elif data[i] == 92 and i + 1 < hi and _LETTER[data[i + 1]]:  # backslash + LaTeX command name
            i += 1
            while i < hi and _LETTER[data[i]]:
                i += 1
        else:
            i += 1
    return n, numbers


@compiled
def scan_exact_key(data, lo, hi, scratch):  # type: ignore[no-untyped-def]
    """(key, is_ascii): `hash_bytes` of `data[lo:hi]` lowercased, whitespace runs collapsed to one
    space, stripped; and whether every byte is ASCII (below 128), for the caller to check.

    The normalised bytes are written branch-free into `scratch` (uint8, at least hi - lo + 8
    bytes, a multiple of 8) and hashed 8 at a time through a uint64 view; the view reads the
    blocks little-endian, as `hash_bytes` packs them, on the little-endian CPUs tracekit runs on
    (x86-64, aarch64).
    """
    j = 0
    prev_space = np.uint8(1)  # drops leading whitespace
    bits = np.uint8(0)
    for i in range(lo, hi):
        c = data[i]
        bits |= c
        space = _SPACE_U8[c]
        scratch[j] = _EXACT_BYTE[c]
        j += 1 - int(space & prev_space)  # table lookups and arithmetic: no branch per byte
        prev_space = space
    if j > 0 and scratch[j - 1] == 32:  # trailing whitespace
        j -= 1
    blocks = scratch.view(np.uint64)
    h = _SEED
    for q in range(j // 8):
        h = _mix_block(h, blocks[q])
    acc = np.uint64(0)
    for t in range(j - j % 8, j):
        acc |= np.uint64(scratch[t]) << np.uint64(8 * (t % 8))
    return fmix64(_mix_block(_mix_block(h, acc), np.uint64(j))), bits < 128


@compiled
def scan_split_words(data, lo, hi, out):  # type: ignore[no-untyped-def]
    """Hash the space-separated tokens of `data[lo:hi]` into `out` (same hash as scan_ascii_words)."""
    n = 0
    i = lo
    while i < hi:
        if data[i] == 32:
            i += 1
            continue
        start = i
        while i < hi and data[i] != 32:
            i += 1
        out[n] = hash_bytes(data, start, i)
        n += 1
    return n


@compiled
def exact_keys_ascii(data, offsets, rows, out):  # type: ignore[no-untyped-def]
    longest = 0
    for k in range(len(rows)):
        longest = max(longest, offsets[rows[k] + 1] - offsets[rows[k]])
    scratch = np.empty((longest // 8 + 2) * 8, np.uint8)
    for k in range(len(rows)):
        out[k] = scan_exact_key(data, offsets[rows[k]], offsets[rows[k] + 1], scratch)[0]


@compiled
def exact_keys_plain(data, offsets, out):  # type: ignore[no-untyped-def]
    for k in range(len(offsets) - 1):
        out[k] = hash_bytes(data, offsets[k], offsets[k + 1])


# -- MinHash signatures -------------------------------------------------------------------------


@compiled
def signature_row(words, nw, ngram, keys, probe, vals, filled, todo, out):  # type: ignore[no-untyped-def]
    """One-permutation MinHash of the word n-grams of `words[:nw]` into `out` (all max if nw == 0).

    Each n-gram is hashed once per entry of `keys` (its copies); each copy lands in a bin. A text
    with fewer than `ngram` words (but at least one) has one n-gram: all its words. `probe` holds
    each bin's probe sequence for densification; `vals`, `filled`, `todo` are scratch.
    """
    bins = out.shape[0]
    if nw == 0:
        for p in range(bins):
            out[p] = np.uint32(0xFFFFFFFF)
        return
    for p in range(bins):
        vals[p] = np.uint32(0xFFFFFFFF)
        filled[p] = False
    count = nw - ngram + 1 if nw >= ngram else 1
    width = ngram if nw >= ngram else nw
    short = np.uint64(0) if nw >= ngram else np.uint64(nw)
    for i in range(count):
        acc = words[i]
        for j in range(1, width):
            acc = acc * _MIX + words[i + j]
        acc ^= short
        for c in range(len(keys)):
            h = fmix64(acc ^ keys[c])
            b = np.int64(((h >> _U32) * np.uint64(bins)) >> _U32)
            vals[b] = min(vals[b], np.uint32(h & _LOW32))
            filled[b] = True
    # optimal densification, one probe round at a time over the bins still empty (branch-free)
    m = 0
    for p in range(bins):
        out[p] = vals[p]
        todo[m] = p
        m += not filled[p]
    rounds = probe.shape[1]
    t = 0
    while m > 0:
        q = 0
        for r in range(m):
            p = todo[r]
            src = probe[p, t] if t < rounds else (p + t - rounds + 1) % bins
            out[p] = vals[src]
            todo[q] = p
            q += not filled[src]
        m = q
        t += 1


@compiled
def sketch_ascii_rows(data, offsets, ngram, keys, probe, sig, has_words, numbers, exact, is_ascii):  # type: ignore[no-untyped-def]
    """Sketch each ASCII text; a text with a byte >= 128 is skipped with `is_ascii` false."""
    n = len(offsets) - 1
    longest = 0
    for k in range(n):
        longest = max(longest, offsets[k + 1] - offsets[k])
    words = np.empty(longest // 2 + 2, np.uint64)
    scratch = np.empty((longest // 8 + 2) * 8, np.uint8)
    vals = np.empty(sig.shape[1], np.uint32)
    filled = np.empty(sig.shape[1], np.bool_)
    todo = np.empty(sig.shape[1], np.int64)
    for k in range(n):
        lo, hi = offsets[k], offsets[k + 1]
        exact[k], is_ascii[k] = scan_exact_key(data, lo, hi, scratch)
        if not is_ascii[k]:
            continue
        nw, numbers[k] = scan_ascii_words(data, lo, hi, words)
        has_words[k] = nw > 0
        signature_row(words, nw, ngram, keys, probe, vals, filled, todo, sig[k])


@compiled
def sketch_split_rows(wdata, woffsets, ndata, noffsets, ngram, keys, probe, sig, has_words, numbers):  # type: ignore[no-untyped-def]
    """Sketch texts given as normalised words and as numbers, each joined with spaces.

    The numbers hash is order-free: the sum of `fmix64` of each number's `hash_bytes`.
    """
    longest = 0
    for k in range(len(woffsets) - 1):
        longest = max(longest, woffsets[k + 1] - woffsets[k], noffsets[k + 1] - noffsets[k])
    words = np.empty(longest // 2 + 2, np.uint64)
    nums = np.empty(longest // 2 + 2, np.uint64)
    vals = np.empty(sig.shape[1], np.uint32)
    filled = np.empty(sig.shape[1], np.bool_)
    todo = np.empty(sig.shape[1], np.int64)
    for k in range(len(woffsets) - 1):
        nw = scan_split_words(wdata, woffsets[k], woffsets[k + 1], words)
        has_words[k] = nw > 0
        acc = np.uint64(0)
        for t in range(scan_split_words(ndata, noffsets[k], noffsets[k + 1], nums)):
            acc += fmix64(nums[t])
        numbers[k] = acc
        signature_row(words, nw, ngram, keys, probe, vals, filled, todo, sig[k])


# -- LSH: union-find over verified candidate pairs ----------------------------------------------


@compiled
def find_root(parent, x):  # type: ignore[no-untyped-def]
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@compiled
def lsh_link(sig, eligible, numbers, band_mix, bands, first, last, threshold, check_numbers, window, parent):  # type: ignore[no-untyped-def]
    """Link the verified candidate pairs of bands first..last-1 in `parent`; return the candidates."""
    n, perms = sig.shape
    rows = perms // bands
    size = 1
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    # band keys, one contiguous row per band
    band_keys = np.empty((last - first, n), np.uint64)
    for i in range(n):
        for band in range(first, last):
            key = np.uint64(band) * _MIX
            for r in range(rows):
                key += np.uint64(sig[i, band * rows + r]) * band_mix[r]
            band_keys[band - first, i] = key
    keys = band_keys.view(np.int64)
    table = np.empty((size, 3), np.int64)  # key, first row, last row: one cache line per probe
    prev = np.empty(n, np.int64)
    candidates = 0
    for b in range(last - first):
        table[:, 1] = -1
        for i in range(n):
            if not eligible[i]:
                continue
            key = keys[b, i]
            slot = (fmix64(band_keys[b, i]) >> _U32) & mask
            while table[slot, 1] >= 0 and table[slot, 0] != key:
                slot = (slot + np.uint64(1)) & mask
            if table[slot, 1] < 0:  # first row of its bucket
                table[slot, 0] = key
                table[slot, 1] = i
                table[slot, 2] = i
                prev[i] = -1
                continue
            # pair i with the bucket's first row and with the `window` rows before it
            head = table[slot, 1]
            j = table[slot, 2]
            prev[i] = j
            table[slot, 2] = i
            steps = 0
            while True:
                candidates += 1
                ri, rj = find_root(parent, i), find_root(parent, j)
                if ri != rj:  # not yet in one cluster: verify the pair
                    ok = not check_numbers or numbers[i] == numbers[j]
                    if ok:
                        eq = 0
                        for p in range(perms):
                            eq += sig[i, p] == sig[j, p]
                        ok = eq / perms >= threshold
                    if ok:
                        if ri < rj:
                            parent[rj] = ri
                        else:
                            parent[ri] = rj
                if j == head:
                    break
                steps += 1
                j = prev[j] if steps < window else head
    return candidates


@compiled
def merge_forest(parent, other):  # type: ignore[no-untyped-def]
    """Join into `parent` the links of the union-find forest `other`."""
    for i in range(len(parent)):
        ri, rj = find_root(parent, i), find_root(parent, find_root(other, i))
        if ri < rj:
            parent[rj] = ri
        elif rj < ri:
            parent[ri] = rj


@compiled
def flatten_forest(parent):  # type: ignore[no-untyped-def]
    """Point every node at its root; return the number of nodes that are not roots."""
    merges = 0
    for i in range(len(parent)):
        parent[i] = find_root(parent, i)
        merges += parent[i] != i
    return merges
