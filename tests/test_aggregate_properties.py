"""Property tests (hypothesis) of the aggregators (the algebra of votes and collections) and of
the plan check's cycle detection."""

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from graphflow.agents import BranchResult, collect, majority_vote, normalize_answer

SETTINGS = settings(deadline=None)  # no timing limits: a loaded machine must not fail these
words = st.sampled_from(["Paris", "paris.", " PARIS!", "Lyon", "lyon", "Nice", "nice?"])
answers = st.lists(st.one_of(words, st.text(max_size=8)), max_size=30)


@SETTINGS
@given(answers)
def test_the_winner_has_the_most_votes_and_the_agreement_is_its_share(items):
    vote = majority_vote(items)
    counts = Counter(normalize_answer(a) for a in items)
    assert vote.total == len(items)
    if not items:
        assert vote.winner is None and vote.agreement == 0.0 and not vote.tie
        return
    assert vote.votes == max(counts.values()) == counts[vote.key]
    assert vote.agreement == vote.votes / len(items)
    assert 0 < vote.agreement <= 1
    assert normalize_answer(vote.winner) == vote.key
    assert vote.winner in items  # the answer as some branch gave it
    assert dict(vote.counts) == dict(counts)


@SETTINGS
@given(answers)
def test_ties_are_reported_exactly_when_several_keys_share_the_top(items):
    vote = majority_vote(items)
    counts = Counter(normalize_answer(a) for a in items)
    top = max(counts.values(), default=0)
    leaders = [k for k, c in counts.items() if c == top]
    assert vote.tie == (len(leaders) > 1)
    if vote.tie:
        assert sorted(normalize_answer(t) for t in vote.tied) == sorted(leaders)
        assert vote.winner == vote.tied[0]
    else:
        assert vote.tied == ()


@SETTINGS
@given(answers, st.randoms(use_true_random=False))
def test_the_counts_do_not_depend_on_the_order_of_the_answers(items, rnd):
    shuffled = list(items)
    rnd.shuffle(shuffled)
    a, b = majority_vote(items), majority_vote(shuffled)
    assert dict(a.counts) == dict(b.counts)
    assert (a.votes, a.total, a.agreement, a.tie) == (b.votes, b.total, b.agreement, b.tie)
    if not a.tie:
        assert a.key == b.key


@SETTINGS
@given(st.text(max_size=20))
def test_normalize_is_idempotent_and_ignores_case_and_edge_punctuation(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once
    assert normalize_answer(text.upper() + ".") == normalize_answer(text.lower())


@SETTINGS
@given(answers)
def test_a_custom_key_groups_answers_its_own_way(items):
    vote = majority_vote(items, key=len)
    assert vote.votes == max(Counter(len(a) for a in items).values(), default=0)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["done", "failed", "timeout"]), st.text(max_size=5)),
                max_size=12), st.randoms(use_true_random=False))
def test_collect_keeps_branch_order_and_drops_failures(pairs, rnd):
    results = [BranchResult(index=i, agent="a", status=s, output=o)
               for i, (s, o) in enumerate(pairs)]
    shuffled = list(results)
    rnd.shuffle(shuffled)
    assert collect(shuffled) == [o for s, o in pairs if s == "done"]


@SETTINGS
@given(st.integers(1, 8).flatmap(lambda n: st.lists(
    st.lists(st.integers(0, n - 1), max_size=3), min_size=n, max_size=n)))
def test_plan_validation_reports_a_cycle_exactly_when_networkx_finds_one(deps):
    """The plan check's fast acyclicity test agrees with networkx, and the cycle it reports
    is a real one."""
    import networkx as nx

    from graphflow.agents import Plan, PlanTask, validate_plan

    tasks = [PlanTask(id=f"t{i}", description="x", assignee="a",
                      depends_on=[f"t{d}" for d in sorted(set(ds)) if d != i])
             for i, ds in enumerate(deps)]
    g = nx.DiGraph((d, t.id) for t in tasks for d in t.depends_on)
    cyclic = not nx.is_directed_acyclic_graph(g)
    problems = validate_plan(Plan(tasks=tasks), ["a"])
    reported = [p for p in problems if "in a cycle" in p]
    assert bool(reported) == cyclic
    if reported:
        ids = [x.strip("'") for x in reported[0].split("tasks ")[1].split(" depend")[0]
               .split(" -> ")]
        assert ids[0] == ids[-1]
        assert all(g.has_edge(a, b) for a, b in itertools.pairwise(ids))
