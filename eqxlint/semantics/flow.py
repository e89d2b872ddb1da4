"""One statement-level flow engine for function bodies.

The engine knows Python's control flow: blocks run in order until a `return`/`raise`/`break`/
`continue` ends them; `if` runs both branches from the same state and joins what survives;
loops run their body twice (so that a value produced by one iteration reaches the next) and join
with the state before the loop; `try` joins the body with its handlers; `with` runs its body.
What a state *is* belongs to a domain: the value analysis (`eqxlint.semantics.values`) keeps what
each name holds; the key-reuse analysis keeps which PRNG keys were used. A domain implements the
hooks of `Domain`; the engine calls them in program order.
"""

from __future__ import annotations

import libcst as cst


class Domain:
    """Hooks a flow domain implements. `state` is whatever the domain keeps; the engine only
    copies and joins it through `copy`/`join`."""

    def copy(self, state):
        raise NotImplementedError

    def join(self, states: list):
        """The state after control flow meets again (`states` has at least one element)."""
        raise NotImplementedError

    def expr(self, node, state) -> None:
        """An expression evaluated for its effects (an expression statement, a test, ...)."""

    def assign(self, node, state) -> None:
        """`Assign`, `AnnAssign`, `AugAssign`."""

    def test(self, stmt, expr, state) -> None:
        """The condition of an `if`/`while`/`assert` (already a subject of `expr`)."""

    def branch(self, stmt, expr, positive: bool, state):
        """The state entering the true (`positive`) or false branch of `stmt`; return it."""
        return state

    def loop_target(self, stmt, state) -> None:
        """Bind a `for` loop's target from its iterable (evaluated already)."""

    def enter_loop(self, stmt, state) -> None:
        pass

    def leave_loop(self, stmt, state) -> None:
        pass

    def enter_region(self, stmt, state):
        """Entering a `with` or `try` body, or the branches of an `if` (after its test); the
        returned token is given back to `leave_region`."""
        return None

    def leave_region(self, stmt, token, state) -> None:
        pass

    def handler_entry(self, stmt, before, body):
        """The state an `except` handler of the `try` statement `stmt` starts from: by default
        the join of the states before the `try` and at the end of its body (the exception may
        come anywhere in between). A domain may start handlers from `before` instead."""
        return self.join([self.copy(before), self.copy(body)])

    def returns(self, stmt, state) -> None:
        """`return` (also `yield` statements are expressions, not returns)."""

    def raises(self, stmt, state) -> None:
        pass

    def delete(self, stmt, state) -> None:
        pass

    def definition(self, stmt, state) -> None:
        """A nested `def` or `class` statement."""

    def other(self, small, state) -> None:
        """Any other simple statement (global, nonlocal, import, pass, ...)."""


class FlowEngine:
    def __init__(self, domain: Domain):
        self.d = domain

    def block(self, body, state):
        """Run a block; returns (state, terminated)."""
        if type(body) is cst.IndentedBlock:
            stmts = body.body
        elif type(body) is cst.SimpleStatementSuite:
            stmts = (body,)
        elif isinstance(body, (list, tuple)):
            stmts = body
        else:
            stmts = (body,)
        for st in stmts:
            state, ended = self.stmt(st, state)
            if ended:
                return state, True
        return state, False

    def stmt(self, st, state):
        d = self.d
        tp = type(st)
        if tp is cst.SimpleStatementLine or tp is cst.SimpleStatementSuite:
            for small in st.body:
                if self.small(small, state):
                    return state, True
            return state, False
        if tp is cst.If:
            return self._if(st, state)
        if tp is cst.For:
            d.expr(st.iter, state)
            return self._loop(st, state, st.orelse)
        if tp is cst.While:
            return self._loop(st, state, st.orelse)
        if tp is cst.With:
            for item in st.items:
                d.expr(item.item, state)
            token = d.enter_region(st, state)
            state, ended = self.block(st.body, state)
            d.leave_region(st, token, state)
            return state, ended
        if tp is cst.Try or tp is getattr(cst, "TryStar", None):
            return self._try(st, state)
        if tp is cst.FunctionDef or tp is cst.ClassDef:
            d.definition(st, state)
            return state, False
        if tp is getattr(cst, "Match", None):
            d.expr(st.subject, state)
            outs = [self.block(case.body, d.copy(state)) for case in st.cases]
            live = [s for s, ended in outs if not ended] + [state]
            return d.join(live), False
        return state, False

    def small(self, s, state) -> bool:
        d = self.d
        tp = type(s)
        if tp is cst.Expr:
            d.expr(s.value, state)
            return False
        if tp is cst.Assign or tp is cst.AnnAssign or tp is cst.AugAssign:
            d.assign(s, state)
            return False
        if tp is cst.Return:
            if s.value is not None:
                d.expr(s.value, state)
            d.returns(s, state)
            return True
        if tp is cst.Raise:
            if s.exc is not None:
                d.expr(s.exc, state)
            d.raises(s, state)
            return True
        if tp is cst.Continue or tp is cst.Break:
            return True
        if tp is cst.Assert:
            d.expr(s.test, state)
            d.test(s, s.test, state)
            if s.msg is not None:
                d.expr(s.msg, state)
            return False
        if tp is cst.Del:
            d.delete(s, state)
            return False
        d.other(s, state)
        return False

    def _if(self, st: cst.If, state):
        d = self.d
        d.expr(st.test, state)
        d.test(st, st.test, state)
        token = d.enter_region(st, state)
        try:
            return self._branches(st, state)
        finally:
            d.leave_region(st, token, state)

    def _branches(self, st: cst.If, state):
        d = self.d
        s1 = d.branch(st, st.test, True, d.copy(state))
        s1, end1 = self.block(st.body, s1)
        s2 = d.branch(st, st.test, False, d.copy(state))
        end2 = False
        if type(st.orelse) is cst.If:
            s2, end2 = self._if(st.orelse, s2)
        elif type(st.orelse) is cst.Else:
            s2, end2 = self.block(st.orelse.body, s2)
        live = [s for s, ended in ((s1, end1), (s2, end2)) if not ended]
        if not live:
            return d.join([s1, s2]), True
        return d.join(live), False

    def _loop(self, st, state, orelse):
        d = self.d
        d.enter_loop(st, state)
        body_state = state
        for _ in range(2):
            cur = d.copy(body_state)
            if type(st) is cst.While:
                d.expr(st.test, cur)
                d.test(st, st.test, cur)
                cur = d.branch(st, st.test, True, cur)
            else:
                d.loop_target(st, cur)
            cur, _ = self.block(st.body, cur)
            body_state = d.join([body_state, cur])
        d.leave_loop(st, body_state)
        if orelse is not None:
            body_state, _ = self.block(orelse.body, body_state)
        return body_state, False

    def _try(self, st, state):
        d = self.d
        before = d.copy(state)
        token = d.enter_region(st, state)
        body, ended = self.block(st.body, state)
        d.leave_region(st, token, body)
        outs = [] if ended else [body]
        for h in st.handlers:
            hs, h_ended = self.block(h.body, d.handler_entry(st, before, body))
            if not h_ended:
                outs.append(hs)
        if st.orelse is not None and not ended:
            outs[0], _ = self.block(st.orelse.body, outs[0])
        merged = d.join(outs) if outs else body
        if st.finalbody is not None:
            merged, fin_end = self.block(st.finalbody.body, merged)
            if fin_end:
                return merged, True
        return merged, not outs
