"""Would static word vectors tell a synonym from a near miss? Measured on every set in tests/data/similar.

Issue 21 item 8 asked whether a maintained embedding library could supply the synonyms the tables lack
(`wordllama`: 256-d static token embeddings shipped inside the wheel, loaded here without its network
loader). For each probe that only the content guard stops, this prints how the model's cosines fall:

- word swaps: the probe and its recorded question differ by one content word each; the cosine of the
  two words, for rewordings (a synonym the tables lack) and near misses (another thing);
- added words: the probe adds words to all of the recorded question's; the best cosine of each added
  word to a recorded word (a word that only restates scores high?), rewordings against details;
- whole questions: the cosine of the two questions' mean token vectors.

A usable signal would put most rewordings above some cosine and no near miss there; the figures show
whether it does. Needs `pip install wordllama` (numpy >= 2); the tier itself does not use it.

    python benchmarks/similar_wordvectors.py
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_seedreplay.similar.evaluate import Probe, read_negatives, read_paraphrases
from pytest_seedreplay.similar.guards import FREE_ADDITIONS
from pytest_seedreplay.similar.measure import explain
from pytest_seedreplay.similar.text import analyse

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "similar"


def load_vectors() -> tuple[Callable[[str], object], float]:
    """A text -> unit vector function from wordllama's shipped files, and the load time in seconds."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("benchmarks/similar_wordvectors.py: wordllama is not installed (pip install wordllama)")
    started = time.perf_counter()
    import numpy as np
    from safetensors import safe_open
    from tokenizers import Tokenizer

    # Its files, read directly: WordLlama.load() looks for the tokenizer in a folder the wheel does not
    # have and then downloads it, and importing the package sets up the root logger.
    root = Path(spec.submodule_search_locations[0])
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        table = f.get_tensor("embedding.weight").astype(np.float32)

    def vector(text: str):
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        mean = table[ids].mean(axis=0)
        return mean / np.linalg.norm(mean)

    return vector, time.perf_counter() - started


def probes() -> list[Probe]:
    found: list[Probe] = []
    for path in sorted(DATA.glob("*.jsonl")):
        found += read_paraphrases(path) if "paraphrases" in path.name else read_negatives(path)
    return found


def share_above(values: list[float], threshold: float) -> int:
    return sum(v >= threshold for v in values)


def report(title: str, rewordings: list[float], near_misses: list[float]) -> None:
    print(f"\n{title}: {len(rewordings)} rewordings, {len(near_misses)} near misses")
    print("  cosine >=   rewordings   near misses")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        print(f"  {threshold:9.1f}   {share_above(rewordings, threshold):10d}   {share_above(near_misses, threshold):11d}")


def main() -> None:
    vector, load_seconds = load_vectors()
    print(f"wordllama l2_supercat 256-d: loaded in {load_seconds * 1000:.0f} ms")
    cosine = lambda a, b: float(vector(a) @ vector(b))  # noqa: E731
    swaps: dict[bool, list[float]] = {True: [], False: []}
    additions: dict[bool, list[float]] = {True: [], False: []}
    whole: dict[bool, list[float]] = {True: [], False: []}
    examples: list[tuple[float, bool, str, str]] = []
    for probe in probes():
        verdict = explain(probe.text, probe.question)
        if verdict.guard != "content":
            continue  # answered already, or another guard decides: the vectors could not change it
        a, b = analyse(probe.text), analyse(probe.question)
        whole[probe.positive].append(cosine(probe.text.lower(), probe.question.lower()))
        only_a, only_b = a.content - b.content, b.content - a.content
        if sum(only_a.values()) == 1 and sum(only_b.values()) == 1:
            x, y = next(iter(only_a)), next(iter(only_b))
            value = cosine(a.spelled.get(x, x), b.spelled.get(y, y))
            swaps[probe.positive].append(value)
            examples.append((value, probe.positive, x, y))
        elif only_a and not only_b:
            extra = [t for t in only_a if t not in FREE_ADDITIONS and t[:1] not in "#\x00"]
            recorded = [t for t in b.content if t[:1] not in "#\x00"]
            if extra and recorded:
                worst = min(max(cosine(a.spelled.get(x, x), b.spelled.get(y, y)) for y in recorded) for x in extra)
                additions[probe.positive].append(worst)
    report("one word swapped for another (cosine of the two words)", swaps[True], swaps[False])
    report("words added (the lowest, over added words, of the best cosine to a recorded word)", additions[True], additions[False])
    report("whole questions (cosine of the mean token vectors)", whole[True], whole[False])
    print("\nthe highest word swaps (R: a rewording, N: a near miss):")
    for value, positive, x, y in sorted(set(examples), reverse=True)[:16]:
        print(f"  {value:.3f} {'R' if positive else 'N'} {x} / {y}")


if __name__ == "__main__":
    main()
