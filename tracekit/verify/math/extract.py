"""Find the final answer in a model's answer text (and in a gold answer that may be a whole solution).

Order: the last `\\boxed{}` / `\\fbox{}` (with the boxes right before it when only "and", commas or
`\\quad` separate them), then "final answer is ...", then the whole text when it is a bare answer
(`7,425,000`, `\\frac{1}{2}`), then "the answer is ...", then a concluding last sentence that states
a value ("Therefore, the total is 240."), and only if allowed the last number.

Example:
    >>> extract_answer("<think>\\\\boxed{1}</think>So \\\\boxed{2}.")
    '2'
"""

from __future__ import annotations

import re

from tracekit.parse.split import split_reasoning

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_FINAL_RE = re.compile(
    r"final\s+answer\s*(?:is|:|=)?\s*(?:the\s+final\s+answer\s+is\s*)?:?\s*(.+?)(?:\s*I hope it is correct|$)",
    re.IGNORECASE | re.DOTALL,
)
_ANSWER_RE = re.compile(
    r"(?:the\s+answer\s+(?:is|=|:)|\banswer\s*[:：]|\banswer\b|réponse\s+(?:est|:)|答案\s*[:：是为]?)\s*(.+)",
    re.IGNORECASE | re.DOTALL,
)
_MATH_SEG_RE = re.compile(
    r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|(?<!\\)\$((?:\\\$|[^$\n])+?)(?<!\\)\$|\\\((.+?)\\\)", re.DOTALL
)
_NUMBER_RE = re.compile(
    r"-?\\frac\{\d+\}\{\d+\}|(?<![A-Za-z])-?\d+\s*/\s*\d+(?!\d|\.\d)|(?<![A-Za-z\d])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:[.,]\d+)?(?:\s*\\?%)?|-?\.\d+"
)
_IS_VALUE_RE = re.compile(r"\b(?:is|are|=|est|equals)\s+\**(\S+?)\**(?=[\s,;]|\.(?:\s|$)|$)")
_CJK_RE = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\u0600-\u06ff\u0900-\u097f]")
_JOIN_TOKENS_RE = re.compile(r"\\(?:quad|qquad|text\{[^{}]*\}|[,;()\[\]])")
_JOIN_REST_RE = re.compile(r"[\sA-Za-z(),;.$]*")
_WORD_RE = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    m = None
    for m in pattern.finditer(text):  # noqa: B007
        pass
    return m


def _brace_end(text: str, start: int) -> int:
    """Index just after the group opened at text[start] == '{', or -1 if unbalanced."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def find_boxes(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every `\\boxed{...}`, `\\fbox{...}` and `\\boxed X` in order."""
    out: list[tuple[int, int, str]] = []
    for m in _BOX_RE.finditer(text):
        j = m.end()
        if j < len(text) and text[j] == "{":
            end = _brace_end(text, j)
            if end < 0:
                # an unclosed box (truncated output): take the rest of the text
                out.append((m.start(), len(text), text[j + 1 :]))
                break  # every later box is inside this one
            out.append((m.start(), end, text[j + 1 : end - 1]))
        elif m.end() > m.start() + len("\\boxed") and j < len(text):
            mm = re.match(r"[^\s$.,]+", text[j:])  # "\boxed 5"
            if mm:
                out.append((m.start(), j + mm.end(), mm.group(0)))
    return out


def _last_box_group(text: str) -> str | None:
    boxes = find_boxes(text)
    if not boxes:
        return None
    group = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        between = text[prev[1] : group[0][0]]
        words = _WORD_RE.findall(re.sub(r"\\[A-Za-z]+", " ", between))
        joined = (
            len(between) <= 80
            and _JOIN_REST_RE.fullmatch(_JOIN_TOKENS_RE.sub(" ", between)) is not None
            and (len(words) <= 1 or any(w.lower() in ("and", "or") for w in words))
            and len(words) <= 5
        )
        if not joined:
            break
        group.insert(0, prev)
    return ", ".join(b[2].strip() for b in group)


def looks_like_bare_answer(text: str) -> bool:
    """True if `text` is short and mostly mathematics (at most two plain words outside LaTeX commands)."""
    t = text.strip()
    if not t or len(t) > 300:
        return False
    t = re.sub(r"\\(?:text|mathrm|textbf|mbox|textnormal|operatorname)\s*\{[^{}]*\}", " ", t)
    t = re.sub(r"\\(?:begin|end)\{[a-z*]+\}(?:\{[^{}]*\})?", " ", t)
    t = re.sub(r"\\[A-Za-z]+", " ", t)
    t = re.sub(r"\b(?:pi|exp|sqrt|sin|cos|tan|log|ln|cm|km|mm|m|kg|units?)\b", " ", t)
    if _CJK_RE.search(t):
        return False
    words = [w for w in _WORD_RE.findall(t) if w.lower() not in ("and", "or", "pct", "percent", "percentage")]
    if words and re.search(r"\d", t):
        # units follow the value; a word before the first digit is prose ("Answer 9", "Soucis : 2,74")
        first_digit = re.search(r"\d", t)
        first_word = re.search(r"[^\W\d_]{2,}", t)
        if first_digit and first_word and first_word.start() < first_digit.start():
            return False
    return len(words) <= 2 and "\n\n" not in t


def _from_phrase(phrase: str) -> str | None:
    """The answer inside an "answer is ..." phrase: its math segments, else itself or its last number."""
    p = phrase.strip().lstrip("*: \n")  # "**Final Answer**\n\nThe ... is 20."
    p = re.split(r"\bI hope it is correct|\n\s*\n", p, maxsplit=1)[0].strip()
    p = p.split("\n", 1)[0].strip() if not p.startswith(("$$", "\\[")) else p
    seg_ms = list(_MATH_SEG_RE.finditer(p))
    segs = [next(g for g in m.groups() if g is not None) for m in seg_ms]
    if segs and last_number(p[seg_ms[-1].end() :]) is not None:
        return last_number(p[seg_ms[-1].end() :])
    m_paren = re.fullmatch(r"\((.*=.*)\)", p.rstrip(" .。"))
    if m_paren:
        return m_paren.group(1)
    if segs:
        return ", ".join(s.strip() for s in segs) if len(segs) > 1 and _joinable(p) else segs[-1].strip()
    p = p.rstrip(" .。")
    if looks_like_bare_answer(p):
        return p
    # "is 34" inside a sentence: the number right after the last "is"
    m = _last_match(_IS_VALUE_RE, p)  # the last "is 34": earlier ones name other quantities
    if m and _NUMBER_RE.fullmatch(m.group(1).rstrip(".")):
        return m.group(1).rstrip(".")
    nums = _NUMBER_RE.findall(p)
    if nums:
        return nums[-1]
    if _CJK_RE.search(p) or not re.search(r"\w", p):  # "**", "." : no answer in it
        return None
    return p


_LATER_SENTENCE_RE = re.compile(r"[.!?](?:\s+(?=[A-Z\\$])|\s*\n)|\n\s*\n")
_ANSWER_AT_RE = re.compile(_ANSWER_RE.pattern.removesuffix(r"\s*(.+)"), re.IGNORECASE)
# what follows "answer" when the sentence talks about the answer instead of stating it
_NOT_A_VALUE = frozenset(
    {
        "is", "was", "be", "been", "being", "correct", "right", "wrong", "incorrect", "as", "to", "for",
        "of", "in", "on", "that", "this", "it", "again", "seems", "seem", "should", "would", "will", "must",
        "makes", "make", "matches", "match", "checks", "check", "holds", "before", "choices", "choice",
        "key", "same", "different", "but", "so", "and", "sense", "with", "from", "by",
    }
)  # fmt: skip


def _answer_phrase(text: str) -> str | None:
    """The value stated after the last "the answer is" / "answer:" of the text, else None.

    Only the last such phrase counts ("...the same answer as before. The answer is 15." reads 15); a
    phrase about the answer ("the answer is correct", "the answer as before") states no value."""
    m = _last_match(_ANSWER_AT_RE, text)
    if m is None or len(_LATER_SENTENCE_RE.findall(text, m.end())) > 2:
        return None  # only the last sentences state the answer; earlier ones are reasoning
    rest = text[m.end() :]
    ans = _from_phrase(rest)
    if not ans or not (looks_like_bare_answer(ans) or _NUMBER_RE.fullmatch(ans)):
        return None
    end = rest.rfind(ans)
    if _cut_off(text) and (end < 0 or rest[end + len(ans) :].strip(" \t\n.!*$)]}")):
        return None  # "the answer is 5, but let me try k =": the trace stops mid-thought
    first = re.match(r"[^\W\d_]+", ans)
    if first and not re.search(r"\d|\\", ans) and first.group(0).lower() in _NOT_A_VALUE:
        return None
    return ans


def _joinable(p: str) -> bool:
    rest = _MATH_SEG_RE.sub(" ", p)
    words = _WORD_RE.findall(rest)
    return all(w.lower() in ("and", "or") for w in words)


def last_number(text: str) -> str | None:
    """The last number in `text` (thousands separators, fractions and a trailing percent kept)."""
    t = re.sub(r"\*\*", "", text)
    nums = _NUMBER_RE.findall(t)
    return nums[-1].strip() if nums else None


def extract_answer(answer_text: str, *, allow_bare_number: bool = False) -> str | None:
    """The final answer of `answer_text`, or None. Never looks inside a reasoning block."""
    text = split_reasoning(answer_text).answer_text
    if not text.strip():
        return None
    whole = _MATH_SEG_RE.fullmatch(text.strip())
    if whole is not None and not find_boxes(text):
        return next(x for x in whole.groups() if x is not None).strip()
    boxes = find_boxes(text)
    m = _last_match(_FINAL_RE, text)
    if boxes and (m is None or m.start() < boxes[-1][0]):
        return _last_box_group(text)
    if m is not None:
        ans = _from_phrase(m.group(1))
        if ans and not (boxes and not re.search(r"[\d\\]", ans)):
            return ans
        if boxes:  # "Therefore, $\boxed{12}$ is the final answer.": the phrase points back at the box
            return _last_box_group(text)
    stripped = text.strip()
    ans = _answer_phrase(text)
    if ans is not None:
        return ans
    if looks_like_bare_answer(stripped):
        return stripped
    concluded = conclusion_answer(text)
    if concluded is not None:
        return concluded
    if allow_bare_number:
        segs = [next(g for g in mm.groups() if g is not None) for mm in _MATH_SEG_RE.finditer(text)]
        tail_num = last_number(text)
        if segs and looks_like_bare_answer(segs[-1]):
            # prefer the last math segment unless a plain number comes after it
            last_seg_end = list(_MATH_SEG_RE.finditer(text))[-1].end()
            if tail_num is None or last_number(text[last_seg_end:]) is None:
                return segs[-1].strip()
        return tail_num
    return None


_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_VALUE = (
    r"\x00\d+\x00"  # a math segment ($...$, \(...\), \[...\]) set aside before splitting
    r"|\$?-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?(?:\s*\\?%)?"
    r"|-?\.\d+"
)
_CONCLUDE_RE = re.compile(
    r"(?:\b(?:is|are|was|equals?|be|becomes|gives?|yields?|remains|comes\s+to|equal\s+to|ha[sd]|have|"
    r"get|gets|got|obtain|obtained|with|by|mak(?:es|ing)|(?:arrived?|arriving)\s+at)\s+|(?:=|≈|\\approx)\s*)"
    r"(?:(?:indeed|just|exactly|simply|actually|still|then|therefore|also|now|approximately|about|"
    r"equal\s+to|precisely)\s+)*"
    rf"(?P<val>{_VALUE})"
    r"(?P<unit>(?:\s+[A-Za-z][A-Za-z\-/]*){0,3})"
    r"\s*(?:[.!]|,\s*(?:which|since|because|as|so|and|confirming)\b.*)?\s*$",
    re.IGNORECASE,
)
# "I'm confident that 44 is the correct answer.": the value before a sentence that names it the answer
_IS_THE_ANSWER_RE = re.compile(
    rf"(?P<val>{_VALUE})(?P<unit>(?:\s+[A-Za-z][A-Za-z\-/]*){{0,3}}?)\s+(?:is|was|should\s+be|must\s+be)\s+"
    r"(?:indeed\s+|definitely\s+|probably\s+)?(?:the|my)\s+(?:right\s+|correct\s+|final\s+)?answer\s*[.!]?\s*$",
    re.IGNORECASE,
)
_HAS_VALUE_RE = re.compile(r"\d|\x00")


def _cut_off(text: str) -> bool:
    """Does the text stop in the middle of a sentence (a trace cut off mid-thought)?"""
    masked = _MATH_SEG_RE.sub("\x00", text[-1500:])
    sentences = [x.strip() for x in _SENTENCE_END_RE.split(masked) if x and x.strip()]
    return not sentences or not re.search(r"[.!?)]\s*$|\x00\s*$", sentences[-1])


def conclusion_answer(text: str) -> str | None:
    """The value a concluding last sentence states ("Therefore, the remainder is 0."), else None.

    Sentences without any number or math after it ("I think that's the answer.") are skipped; the first
    one from the end that has a value must state it at its end, or there is no answer (a trace cut off
    mid-thought ends in an unfinished sentence)."""
    tail = text[-1500:]
    # markdown bold: a value in bold at the end of a line ends its sentence ("= **35.06 g/mol**")
    tail = re.sub(r"\*\*([^*\n]{1,80}?)\*\*(?=[ \t]*(?:\n|$))", lambda m: m.group(1).rstrip(" .") + ".", tail)
    tail = re.sub(r"\*\*([^*\n]{1,80}?)\*\*|(?<![*\w])\*([^*\s][^*\n]{0,20}?)\*(?![*\w])", lambda m: m.group(1) or m.group(2), tail)
    segs: list[str] = []

    def keep(m: re.Match[str]) -> str:
        segs.append(next(g for g in m.groups() if g is not None))
        return f"\x00{len(segs) - 1}\x00"

    masked = _MATH_SEG_RE.sub(keep, tail)
    sentences = [s.strip() for s in _SENTENCE_END_RE.split(masked) if s and s.strip()]
    if not sentences or not re.search(r"[.!?)]\s*$|\x00\s*$", sentences[-1]):
        return None  # an unfinished last sentence: the text was cut off
    for k in range(len(sentences) - 1, max(len(sentences) - 7, -1), -1):
        sentence = sentences[k]
        if not _HAS_VALUE_RE.search(sentence):
            continue
        if not re.search(r"[.!]\s*$|\x00\s*$", sentence):
            return None
        only = re.fullmatch(r"\x00(\d+)\x00\s*\.?", sentence)
        if only and k > 0 and sentences[k - 1].rstrip().endswith(":"):
            return segs[int(only.group(1))].strip()  # "we have confirmed that: $$\tan A = 2$$"
        m = _CONCLUDE_RE.search(sentence) or _IS_THE_ANSWER_RE.search(sentence)
        if m is None:
            return None
        val = m.group("val")
        seg = re.fullmatch(r"\x00(\d+)\x00", val)
        value = segs[int(seg.group(1))].strip() if seg else val.lstrip("$")
        unit = (m.group("unit") or "").strip()
        # words after a number in prose are what it counts ("15 sides", "2.78 m"), never variables
        return f"{value} \\text{{ {unit}}}" if unit and not seg else value
    return None


def extract_gold(gold: str) -> str | None:
    """The gold answer: the last box group of a boxed solution, else the (delimited) text itself."""
    if gold is None:
        return None
    g = gold.strip()
    if not g:
        return None
    boxed = _last_box_group(g)
    if boxed is not None:
        return boxed
    seg = _MATH_SEG_RE.fullmatch(g)
    if seg is not None:
        return next(x for x in seg.groups() if x is not None).strip()
    if looks_like_bare_answer(g) or (
        len(g) <= 80 and "\n" not in g and not _ANSWER_RE.search(g) and not _MATH_SEG_RE.search(g)
    ):
        return g
    ans = extract_answer(g, allow_bare_number=True)
    return ans if ans is not None else g


_MCQ_LETTERS = "ABCDE"
_MCQ_FULL_RE = re.compile(r"^\(?([A-E])\)?$")
_MCQ_LEAD_RE = re.compile(r"^\(?([A-E])\)?(?:[\s.:：。)]|不|$)")


def _strip_text_cmds(s: str) -> str:
    s = re.sub(r"\\(?:text|mathrm|textbf|mathbf|mbox|textnormal)\s*\{([^{}]*)\}", r"\1", s)
    return s.replace("$", "").replace("\\(", "").replace("\\)", "").strip()


def mcq_letter(text: str, *, free: bool) -> str | None:
    """A multiple-choice letter (A-E) in `text`. `free` allows the last standalone letter of prose."""
    s = _strip_text_cmds(text)
    m = _MCQ_FULL_RE.match(s)
    if m:
        return m.group(1)
    boxes = find_boxes(s)
    if boxes:
        m = _MCQ_FULL_RE.match(_strip_text_cmds(boxes[-1][2]))
        return m.group(1) if m else None
    m = _MCQ_LEAD_RE.match(s)
    if m:
        return m.group(1)
    m = _last_match(
        re.compile(
            r"(?:answer\s*(?:is|:)?|réponse\s+est|答案\s*[:：是为]?)\s*(?:for sure\s*)?\(?([A-E])\b", re.I
        ),
        s,
    )
    if m is not None:
        return m.group(1)
    if free and len(_WORD_RE.findall(s)) >= 3:
        letters = re.findall(r"(?<![A-Za-z'])([A-E])(?![A-Za-z'])", s)
        if letters:
            return letters[-1]
    return None
