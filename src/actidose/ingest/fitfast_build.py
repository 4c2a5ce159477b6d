"""The Recording from the columnar FIT decoder: the rules of :mod:`actidose.ingest.fit`, vectorized.

:func:`read_bytes` scans a FIT stream with :func:`actidose.ingest.fitfast.scan` and fills the
same :class:`actidose.ingest.fit._State` the reference reader fills message by message, so the
last step (:meth:`_State.build`: placing power-on-relative runs, HR precedence, sessions, UTC
offset, vendor series, sensor kind, warnings) is shared code. What the reference does per
message is done here per definition with numpy:

* timestamps: field 253 of every message, compressed-timestamp headers rolled over from the
  last full timestamp (cumulative sums of the 5-bit steps between full values), and the clock's
  power-on-relative runs (a Python step per *run* of relative values, not per message);
* ``record`` heart rates, ``monitoring`` (heart rate, 16-bit timestamps rebuilt from the last
  full timestamp, activity counters), ``hrv`` RR intervals anchored to the preceding
  record/event (cumulative sums restarting at each new anchor time), ``hr`` strap beats (the
  12-bit packed event times accumulated with cumulative sums, each beat placed from its anchor
  message), ``device_info``.

Messages that are few per file — file_id, session, activity, monitoring_info,
monitoring_hr_data, timestamp_correlation, beat_intervals — go through the reference's own
per-message code (``_State.other_raw``) with values decoded as fitdecode decodes them (enum
names, subfields, scale). Warnings are given in file order, as the reference gives them.

Where fitdecode itself would fail on a message (its expansion of ``hr.event_timestamp_12``
without a timestamp before it), :class:`~actidose.ingest.fitfast.Fallback` hands the file to
the reference, which reports that failure as it always did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import fitdecode.profile as _profile
import numpy as np
import numpy.typing as npt

from actidose.errors import InputError
from actidose.ingest import fit as _fit
from actidose.ingest import fitfast as ff
from actidose.recording import Recording

__all__ = ["read_bytes"]

_US: Final = 1_000_000
_REL_LIMIT: Final = 0x10000000
_F_TS: Final = 253
_REC: Final = 20
_EVENT: Final = 21
_MON: Final = 55
_HRV: Final = 78
_HR: Final = 132
#: messages handled one by one through ``_State.other_raw``
_SMALL: Final = frozenset({0, 18, 34, 103, 162, 211, 290})
_DEVICE_INFO: Final = 23
#: up to this many messages of a kind decode quicker one by one than column-wise
_FEW: Final = 32
_NO_I64: Final = np.empty(0, dtype=np.int64)


def read_bytes(data: bytes, *, base: int = 0, path: str, salvage: bool) -> Recording:
    """Read a whole FIT stream (``data``, starting at file offset ``base``) like
    :func:`actidose.ingest.fit.read_reference` would.

    Parameters
    ----------
    data
        The stream's bytes, from its first FIT header on.
    base
        Offset of ``data[0]`` in the file (error offsets are file offsets).
    path
        Named in errors.
    salvage
        Keep what precedes damage instead of raising it (see :func:`actidose.ingest.fit.read`).

    Returns
    -------
    Recording
        Without ``meta["fit_decoder"]`` (the caller sets it).

    Raises
    ------
    InputError
        Damage, implausible values, or (``TimeAnchorError``) no way to place the samples.
    actidose.ingest.fitfast.Fallback
        The file needs the reference decoder.
    """
    s = ff.scan(data, base)
    state = _Builder(s).state()  # before raising damage: a Fallback found here comes first
    damage = None
    if s.damage is not None:
        damage = InputError(s.damage.reason, path=path, offset=s.damage.offset)
    return _fit._finish(state, damage, path=path, salvage=salvage)


# --------------------------------------------------------------------------------------------
# field semantics of the reference (fit._int, _uint, _bpm, ...) over columns


def _ints(s: ff.Scan, d: ff.Definition, num: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """``fit._int`` of the last field ``num``: values and where they are ints (a scalar
    integer field that is not invalid)."""
    n = d.offsets.size
    f = d.last(num)
    if f is None:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    c = ff.column(s, d, f)
    if c.kind in "iz" and c.count == 1:
        return c.values.astype(np.int64), c.valid
    return np.zeros(n, np.int64), np.zeros(n, bool)


def _bpms(s: ff.Scan, d: ff.Definition, num: int) -> npt.NDArray[np.float64]:
    """``fit._bpm`` of the last field ``num``: a float, NaN for invalid, arrays and bytes."""
    n = d.offsets.size
    f = d.last(num)
    if f is None:
        return np.full(n, np.nan)
    c = ff.column(s, d, f)
    if c.kind in "izf" and c.count == 1:
        return np.where(c.valid, c.values.astype(np.float64), np.nan)
    return np.full(n, np.nan)


def _merge(
    parts: list[tuple[npt.NDArray[np.int64], list[npt.NDArray[Any]]]],
) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[Any]]]:
    """Concatenate per-definition columns into file (offset) order."""
    if not parts:
        return _NO_I64, []
    if len(parts) == 1:
        return parts[0]
    pos = np.concatenate([p for p, _ in parts])
    cols = [np.concatenate(c) for c in zip(*(c for _, c in parts), strict=True)]
    order = np.argsort(pos, kind="stable")
    return pos[order], [c[order] for c in cols]


# --------------------------------------------------------------------------------------------
# decoded values like fitdecode's (enum names, subfields, scale/offset) for the few messages
# read one by one


def _render(fld: Any, raw: Any) -> Any:
    enum = fld.type.enum
    if enum and raw in enum:
        return enum[raw]
    return raw


def _scale(fld: Any, v: Any) -> Any:
    if isinstance(v, tuple):
        return tuple(_scale(fld, x) for x in v)
    if isinstance(v, int | float):
        if fld.scale:
            v = float(v) / fld.scale
        if fld.offset:
            v = v - fld.offset
    return v


def _decoded_one(d: ff.Definition, raws: list[Any], i: int) -> Any:
    """The value fitdecode gives field ``i`` of a message: enum name, subfield, scale."""
    mt = _profile.MESSAGE_TYPES.get(d.global_num)
    f, raw = d.fields[i], raws[i]
    fld = None if mt is None else mt.fields.get(f.num)
    if fld is None:
        return raw
    chosen = fld
    for sub in fld.subfields or ():  # the first subfield a reference value selects
        if any(
            g.num == ref.def_num and ref.raw_value == r
            for ref in sub.ref_fields
            for g, r in zip(d.fields, raws, strict=True)
        ):
            chosen = sub
            break
    return _scale(chosen, _render(chosen, raw))


# --------------------------------------------------------------------------------------------
# the clock


class _ClockTable:
    """The reference clock (``fit._Clock``) replayed over all full timestamps in file order:
    for any offset, the open relative run, the run a relative value belongs to, and the last
    full timestamp."""

    def __init__(self, pos: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> None:
        self.pos, self.t = pos, t
        n = t.size
        self.cur = np.full(n, -1, dtype=np.int64)
        self.runs: list[Any] = []
        created = np.zeros(n, dtype=np.int64)
        rel = t < _REL_LIMIT
        if rel.any():
            edges = np.flatnonzero(np.diff(np.concatenate(([0], rel.astype(np.int8), [0]))))
            for a, b in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True):
                t0 = int(t[a])
                if self.runs and t0 >= self.runs[-1].first_rel:
                    run = self.runs[-1]  # the same power cycle goes on
                else:
                    before = None if a == 0 else float(int(t[a - 1]) - t0)
                    run = _fit._Run(t0, t0, before)
                    self.runs.append(run)
                    created[a] = 1
                run.last_rel = max(run.last_rel, int(t[a:b].max()))
                if b < n and run.after is None:
                    run.after = float(int(t[b]) - run.last_rel)
                self.cur[a:b] = len(self.runs) - 1
        self.nruns = np.cumsum(created)

    def runs_at(
        self, pos: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(open run, run for relative values) at each offset, counting a timestamp at that
        very offset (``_Clock.cur`` and ``_Clock.run_for_relative()`` there)."""
        if not self.runs:  # no power-on-relative time at all: the usual case
            none = np.full(pos.size, -1, dtype=np.int64)
            return none, none
        j = np.searchsorted(self.pos, pos, side="right") - 1
        have = j >= 0
        jj = np.where(have, j, 0)
        cur = np.where(have, self.cur[jj], -1)
        return cur, np.where(cur >= 0, cur, np.where(have, self.nruns[jj], 0) - 1)

    def last_at(
        self, pos: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """The last full timestamp at or before each offset, and whether there is one."""
        j = np.searchsorted(self.pos, pos, side="right") - 1
        have = j >= 0
        if not self.t.size:
            return np.zeros(pos.size, dtype=np.int64), have
        return np.where(have, self.t[np.where(have, j, 0)], 0), have


# --------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, s: ff.Scan) -> None:
        self.s = s
        self.st = _fit._State()
        self.st.n_parts = len(s.parts)
        self.used = [d for d in s.defs if d.offsets.size]
        self.by_global: dict[int, list[ff.Definition]] = {}
        for d in self.used:
            self.by_global.setdefault(d.global_num, []).append(d)
        # every data message in file order, and where each definition's messages are in it
        self.where: dict[int, npt.NDArray[np.int64]] = {}
        if self.used:
            offs = np.concatenate([d.offsets for d in self.used])
            order = np.argsort(offs, kind="stable")
            self.pos = offs[order]
            inv = np.empty_like(order)
            inv[order] = np.arange(order.size)
            start = 0
            for d in self.used:
                self.where[d.index] = inv[start : start + d.offsets.size]
                start += d.offsets.size
            self.global_num = np.repeat(
                np.array([d.global_num for d in self.used], dtype=np.int64),
                [d.offsets.size for d in self.used],
            )[order]
        else:
            self.pos = _NO_I64
            self.global_num = _NO_I64
        n = self.pos.size
        # per message: timestamp (fit._int of field 253, after a compressed header), the last
        # non-invalid native field 253 (what fitdecode's timestamp state takes), compressed?
        self.ts_val = np.zeros(n, dtype=np.int64)
        self.ts_ok = np.zeros(n, dtype=bool)
        self.upd_val = np.zeros(n, dtype=np.int64)
        self.upd_ok = np.zeros(n, dtype=bool)
        self.comp = np.zeros(n, dtype=bool)
        self.events: list[tuple[int, int, Any]] = []  # (offset, kind, payload) in file order
        self.few_device_infos = True

    def ts_of(self, d: ff.Definition) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        i = self.where[d.index]
        return self.ts_val[i], self.ts_ok[i]

    def state(self) -> _fit._State:
        self.timestamps()
        self.clock = self.make_clock()
        self.records()
        self.hrv()
        self.monitoring()
        self.device_info()
        self.one_by_one()
        self.st.clock.runs = self.clock.runs
        return self.st

    # -- timestamps ----------------------------------------------------------------------

    def timestamps(self) -> None:
        """Field 253 of every message: one gather per field type over all definitions."""
        s = self.s
        if not self.pos.size:
            return
        self.comp = s.u8[self.pos] >= 0x80
        groups: dict[tuple[int, bool], list[tuple[npt.NDArray[np.int64], Any]]] = {}
        for d in self.used:
            occ = d.all(_F_TS)  # int scalars (fitfast flags other types)
            if not occ:
                continue
            tgt = self.where[d.index]
            if len(occ) == 1:
                f = occ[0]
                groups.setdefault((f.base, d.big_endian), []).append(
                    (d.offsets + 1 + f.offset, tgt)
                )
                continue
            n = d.offsets.size
            val, ok = np.zeros(n, np.int64), np.zeros(n, bool)
            uval, uok = np.zeros(n, np.int64), np.zeros(n, bool)
            for f in occ:  # the last one is the message's timestamp, the last valid one updates
                c = ff.column(s, d, f)
                val, ok = c.values.astype(np.int64), c.valid
                uval = np.where(ok, val, uval)
                uok = uok | ok
            self.ts_val[tgt], self.ts_ok[tgt] = val, ok
            self.upd_val[tgt], self.upd_ok[tgt] = uval, uok
        for (base, big), items in groups.items():
            at = np.concatenate([a for a, _ in items])
            tgt = np.concatenate([t for _, t in items])
            val, ok = ff.ints_at(s.u8, at, base, big)
            self.ts_val[tgt], self.ts_ok[tgt] = val, ok
            self.upd_val[tgt], self.upd_ok[tgt] = val, ok
        if self.comp.any():
            self.compressed()

    def full_updates(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Sort keys (2 x offset) and values of fitdecode's timestamp state updates: every
        non-invalid native field 253, and 0 at the start of every FIT file (its reset)."""
        starts = np.array([b for _, b in self.s.parts], dtype=np.int64)
        k = np.concatenate((2 * starts - 1, 2 * self.pos[self.upd_ok]))
        v = np.concatenate((np.zeros(starts.size, np.int64), self.upd_val[self.upd_ok]))
        order = np.argsort(k, kind="stable")
        return k[order], v[order]

    def compressed(self) -> None:
        """Compressed timestamp headers: ``t = acc + ((offset - acc) & 31)`` where acc is the
        last timestamp (full or compressed) of the same FIT file (protocol §3.3.7; fitdecode's
        accumulator). Between two full values that is a cumulative sum of 5-bit steps."""
        fk, fv = self.full_updates()
        comp_idx = np.flatnonzero(self.comp)
        ck = 2 * self.pos[comp_idx] + 1
        k = np.concatenate((fk, ck))
        v = np.concatenate((fv, (self.s.u8[self.pos[comp_idx]] & 0x1F).astype(np.int64)))
        is_full = np.concatenate((np.ones(fk.size, bool), np.zeros(ck.size, bool)))
        order = np.argsort(k, kind="stable")
        v, is_full = v[order], is_full[order]
        low5 = np.where(is_full, v & 31, v)
        prev = np.concatenate(([0], low5[:-1]))
        step = np.where(is_full, 0, (v - prev) & 31)
        seg = np.cumsum(is_full) - 1  # every key follows a part start, a full value
        cs = np.cumsum(step)
        full_idx = np.flatnonzero(is_full)
        acc = v[full_idx][seg] + cs - cs[full_idx][seg]
        self.ts_val[comp_idx] = acc[~is_full]  # in offset order, as comp_idx
        self.ts_ok[comp_idx] = True

    def make_clock(self) -> _ClockTable:
        return _ClockTable(self.pos[self.ts_ok], self.ts_val[self.ts_ok])

    # -- record, hrv, monitoring ---------------------------------------------------------

    def records(self) -> None:
        parts = []
        for d in self.by_global.get(_REC, []):
            val, ok = self.ts_of(d)
            has = np.full(d.offsets.size, d.last(3) is not None)
            parts.append((d.offsets, [val, ok, has, _bpms(self.s, d, 3)]))
        pos, cols = _merge(parts)
        if not pos.size:
            return
        t, ok, has, bpm = cols
        self.st.n_no_time += int(np.count_nonzero(has & ~ok))
        keep = has & ok
        cur = self.clock.runs_at(pos[keep])[0]
        self.st.records.set_arrays(t[keep] * _US, bpm[keep], cur)

    def hrv(self) -> None:
        parts = []
        for d in self.by_global.get(_HRV, []):
            f = d.last(0)
            if f is None:
                continue
            c = ff.column(self.s, d, f)
            if c.kind == "b":
                v = c.values.astype(np.int64)
                ok = np.broadcast_to(c.valid[:, None], v.shape)
            elif c.kind in "iz":
                v = c.values.astype(np.int64).reshape(d.offsets.size, c.count)
                ok = c.valid.reshape(v.shape) & (v >= 0)
            else:
                continue  # floats, strings: no int values
            pos = np.broadcast_to(d.offsets[:, None], v.shape)
            parts.append((pos[ok], [v[ok]]))
        pos, cols = _merge(parts)
        if not pos.size:
            return
        (v,) = cols
        # anchors: record and event messages with a timestamp, in file order
        anchor = self.ts_ok & ((self.global_num == _REC) | (self.global_num == _EVENT))
        a_pos, a_t = self.pos[anchor], self.ts_val[anchor]
        j = np.searchsorted(a_pos, pos) - 1
        anchored = j >= 0
        self.st.n_rr_unanchored += int(np.count_nonzero(~anchored))
        pos, v, j = pos[anchored], v[anchored], j[anchored]
        if not pos.size:
            return
        # the sum restarts where an anchor brings a new time (hrv_anchor_at)
        new = np.concatenate(([True], a_t[1:] != a_t[:-1]))
        group = np.maximum.accumulate(np.where(new, np.arange(a_t.size), 0))[j]
        cs = np.cumsum(v)
        starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
        lengths = np.diff(np.concatenate((starts, [v.size])))
        acc = cs - np.repeat((cs - v)[starts], lengths)
        t_us = a_t[group] * _US + acc * 1000
        cur = self.clock.runs_at(pos)[0]
        self.st.rr_hrv.set_arrays(t_us, v.astype(np.float64), cur)

    def monitoring(self) -> None:
        s = self.s
        parts = []
        for d in self.by_global.get(_MON, []):
            n = d.offsets.size
            val, ok = self.ts_of(d)
            cols: list[npt.NDArray[Any]] = [val, ok]
            cols += _ints(s, d, 26)  # timestamp_16
            atype, atype_ok = _ints(s, d, 5)
            f24 = d.last(24)
            cati, cati_ok = np.zeros(n, np.int64), np.zeros(n, bool)
            if f24 is not None:
                c = ff.column(s, d, f24)
                if c.kind == "b" and c.count == 1:
                    cati, cati_ok = c.values[:, 0].astype(np.int64), c.valid
                elif c.kind in "iz" and c.count == 1:
                    cati, cati_ok = c.values.astype(np.int64), c.valid
            cols += [
                np.where(atype_ok, atype, cati & 0x1F),
                atype_ok | cati_ok,
            ]
            for num in (3, 2, 19, 33, 34):  # cycles, distance, calories, moderate, vigorous
                v, vok = _ints(s, d, num)
                cols += [v, vok & (v >= 0)]
            cols += [np.full(n, d.last(27) is not None), _bpms(s, d, 27)]
            cols.append(np.full(n, d.last(8) is not None or d.last(9) is not None))
            parts.append((d.offsets, cols))
        pos, cols = _merge(parts)
        if not pos.size:
            return
        (t, ok, t16, t16_ok, atype, atype_ok, *counters, has_hr, bpm, has16) = cols
        cur, rfr = self.clock.runs_at(pos)
        last, have_last = self.clock.last_at(pos)
        rebuilt = t16_ok & have_last & ~ok
        t = np.where(rebuilt, last + ((t16 - (last & 0xFFFF)) & 0xFFFF), t)
        t_ok = ok | rebuilt
        st = self.st
        st.n_monitoring_msgs += int(pos.size)
        vals, oks = counters[0::2], counters[1::2]
        cyc_ok, dist_ok = oks[0], oks[1]
        st.n_mon_16bit_only += int(np.count_nonzero(~cyc_ok & ~dist_ok & has16))
        any_counter = np.logical_or.reduce(oks)
        lost = np.flatnonzero(any_counter & ~t_ok)
        if lost.size:
            self.events.append(
                (
                    int(pos[lost[0]]),
                    0,
                    ("mon-no-time", "monitoring activity counters without a time skipped"),
                )
            )
        rows = any_counter & t_ok
        st.mon_table = _fit._MonTable(
            t[rows],
            rfr[rows],
            np.where(atype_ok, atype, -1)[rows],
            np.stack([np.where(o, v, np.nan) for v, o in zip(vals, oks, strict=True)], axis=1)[
                rows
            ].astype(np.float64),
        )
        st.n_no_time += int(np.count_nonzero(has_hr & ~t_ok))
        keep = has_hr & t_ok
        st.monitoring.set_arrays(t[keep] * _US, bpm[keep], cur[keep])

    def device_info(self) -> None:
        """``device_info`` (``_State.other_raw``): every message's (source_type, device_type,
        manufacturer, product), and the creator (device_index 0) from the first of those.
        Column-wise where there are many (some devices write one every few seconds); a few
        go one by one with the other small messages."""
        defs = self.by_global.get(_DEVICE_INFO, [])
        self.few_device_infos = sum(d.offsets.size for d in defs) <= _FEW
        if self.few_device_infos:
            return
        parts = []
        for d in defs:
            cols: list[npt.NDArray[Any]] = []
            for num in (0, 25, 1, 2, 4):
                cols += _ints(self.s, d, num)
            cols.append(np.full(d.offsets.size, d.index))
            parts.append((d.offsets, cols))
        pos, cols = _merge(parts)
        if not pos.size:
            return
        index, index_ok, *facts, def_i = cols
        st = self.st

        def opt(v: npt.NDArray[np.int64], o: npt.NDArray[np.bool_]) -> list[int | None]:
            return [x if y else None for x, y in zip(v.tolist(), o.tolist(), strict=True)]

        st.devices.extend(zip(*(opt(facts[i], facts[i + 1]) for i in (0, 2, 4, 6)), strict=True))
        creator = np.flatnonzero(index_ok & (index == 0))
        if creator.size and not st.creator:
            i = int(creator[0])
            d = self.s.defs[int(def_i[i])]
            raws = ff.raw_values(self.s.data, int(pos[i]), d)
            raw = {f.num: r for f, r in zip(d.fields, raws, strict=True)}
            st.creator = _fit._creator(raw, _Values(d, raws))

    # -- hr messages (strap data) ------------------------------------------------------------

    def hr(self) -> bool:
        """``hr`` messages (``_State.hr_raw``) column-wise; False when a field has a type this
        does not cover (the messages then go one by one).

        Per message: the event_timestamp list (explicit values, then the 12-bit packed ones
        once an explicit value has seeded the accumulator) and the filtered_bpm list, paired
        up to the shorter; beats are placed from the latest anchor message (timestamp +
        fractional_timestamp at its first event_timestamp). The lists of all messages are laid
        end to end in file order (a scatter, no sort)."""
        defs = self.by_global.get(_HR, [])
        for d in defs:
            for num, kinds in ((0, "iz1"), (1, "iz1"), (9, "iz"), (6, "izb"), (10, "b")):
                f = d.last(num)
                if f is None:
                    continue
                kind = ff.kind_of(f)
                if kind not in kinds or ("1" in kinds and f.size != ff.base_size(f)):
                    return False
        if not defs:
            return True
        self.hr_quirks()
        s, st = self.s, self.st
        mpos = self.pos[self.global_num == _HR]
        m = mpos.size
        t = np.zeros(m, np.int64)
        tok = np.zeros(m, bool)
        frac_us = np.zeros(m, np.int64)
        first_ok = np.zeros(m, bool)
        first_val = np.zeros(m, np.int64)
        e_n = np.zeros(m, np.int64)  # explicit event_timestamp entries
        k_n = np.zeros(m, np.int64)  # packed ones
        b_n = np.ones(m, np.int64)  # filtered_bpm entries ([None] when missing or invalid)
        b_some = np.zeros(m, bool)  # filtered_bpm is not None
        per_def = []
        for d in defs:
            n = d.offsets.size
            r = np.searchsorted(mpos, d.offsets)
            t[r], tok[r] = self.ts_of(d)
            frac, frac_ok = _ints(s, d, 0)
            t256, t256_ok = _ints(s, d, 1)
            frac_us[r] = np.where(
                frac_ok,
                np.rint(frac * 1e6 / 32768),
                np.where(t256_ok, np.rint(t256 * 1e6 / 256), 0.0),
            ).astype(np.int64)
            # event_timestamp (fit._ints: a scalar invalid value is no entry at all)
            f9 = d.last(9)
            e_val = np.zeros((n, 0), np.int64)
            e_ok = np.zeros((n, 0), bool)
            if f9 is not None:
                c = ff.column(s, d, f9)
                e_val = c.values.astype(np.int64).reshape(n, c.count)
                e_ok = c.valid.reshape(n, c.count)
                e_n[r] = e_ok[:, 0] if c.count == 1 else c.count
                first_ok[r] = e_ok[:, 0]
                first_val[r] = e_val[:, 0]
            # event_timestamp_12: 12-bit parts packed little-endian
            f10 = d.last(10)
            lows = np.zeros((n, 0), np.int64)
            p_ok = np.zeros(n, bool)
            if f10 is not None:
                c = ff.column(s, d, f10)
                k = f10.size * 8 // 12
                b = c.values.astype(np.int64)
                o = 12 * np.arange(k)
                lo, hi = o // 8, np.minimum(o // 8 + 1, f10.size - 1)
                lows = ((b[:, lo] | (b[:, hi] << 8)) >> (o % 8)) & 0xFFF
                p_ok = c.valid
                k_n[r] = np.where(p_ok, k, 0)
            # filtered_bpm
            f6 = d.last(6)
            b_val = np.full((n, 1), np.nan)
            if f6 is not None:
                c = ff.column(s, d, f6)
                if c.kind == "b":
                    b_val = np.where(c.valid[:, None], c.values.astype(np.float64), np.nan)
                    b_n[r] = np.where(c.valid, c.count, 1)
                    b_some[r] = c.valid
                else:
                    v = c.values.astype(np.float64).reshape(n, c.count)
                    b_val = np.where(c.valid.reshape(n, c.count), v, np.nan)
                    b_n[r] = c.count
                    b_some[r] = c.valid if c.count == 1 else True
            per_def.append((r, e_val, e_ok, lows, p_ok, b_val))
        # the lists of all messages end to end
        e_count = e_n + k_n
        e_start = np.cumsum(e_count) - e_count
        b_start = np.cumsum(b_n) - b_n
        n_e, n_b = int(e_count.sum()), int(b_n.sum())
        evals = np.zeros(n_e, np.int64)
        eok = np.zeros(n_e, bool)
        epk = np.zeros(n_e, bool)
        bvals = np.full(n_b, np.nan)
        for r, e_val, e_ok, lows, p_ok, b_val in per_def:
            if e_val.shape[1]:
                slot = np.arange(e_val.shape[1])
                put = slot < e_n[r][:, None]
                dest = (e_start[r][:, None] + slot)[put]
                evals[dest], eok[dest] = e_val[put], e_ok[put]
            if lows.shape[1]:
                put = np.broadcast_to(p_ok[:, None], lows.shape)
                dest = (e_start[r][:, None] + e_n[r][:, None] + np.arange(lows.shape[1]))[put]
                evals[dest], eok[dest], epk[dest] = lows[put], True, True
            slot = np.arange(b_val.shape[1])
            put = slot < b_n[r][:, None]
            bvals[(b_start[r][:, None] + slot)[put]] = b_val[put]
        msg_of_e = np.repeat(np.arange(m), e_count)
        msg_of_b = np.repeat(np.arange(m), b_n)
        # the 12-bit accumulator: reset by every event_timestamp, unset before the first
        full = ~epk & eok
        seg = np.cumsum(full)
        seeded = epk & (seg > 0)
        unseeded = epk & (seg == 0)
        st.n_hr_unanchored += int(np.count_nonzero(unseeded))
        chain = np.flatnonzero(full | seeded)
        if chain.size:
            cv, cfull = evals[chain], full[chain]
            low = cv & 0xFFF
            step = np.where(cfull, 0, (low - np.concatenate(([0], low[:-1]))) & 0xFFF)
            cs = np.cumsum(step)
            fidx = np.flatnonzero(cfull)
            cseg = np.cumsum(cfull) - 1
            evals[chain] = np.where(cfull, cv, (cv[fidx][cseg] + cs - cs[fidx][cseg]) & 0xFFFFFFFF)
        e_total = e_count - np.bincount(msg_of_e[unseeded], minlength=m)
        n_beats = np.minimum(e_total, b_n)
        lost = np.flatnonzero(tok & ~first_ok)
        if lost.size:
            text = "hr message with a timestamp but no event_timestamp"
            self.events.append((int(mpos[lost[0]]), 0, ("hr-anchor", text)))
        odd = np.flatnonzero((e_total != b_n) & ((e_total > 0) | b_some))
        if odd.size:
            text = "hr message with unequal event_timestamp and filtered_bpm counts"
            self.events.append((int(mpos[odd[0]]), 0, ("hr-count", text)))
        anchor = tok & first_ok
        last = np.maximum.accumulate(np.where(anchor, np.arange(m), -1))
        have = last >= 0
        st.n_hr_unanchored += int(n_beats[~have].sum())
        a_us = (t * _US + frac_us)[np.maximum(last, 0)]
        a_evt = first_val[np.maximum(last, 0)]
        # the first n_beats entries of each message's two lists, paired
        in_e = (np.arange(n_e) - e_start[msg_of_e]) < n_beats[msg_of_e]
        in_b = (np.arange(n_b) - b_start[msg_of_b]) < n_beats[msg_of_b]
        ev, ek, em, bv = evals[in_e], eok[in_e], msg_of_e[in_e], bvals[in_b]
        use = ek & have[em]
        ev, em, bv = ev[use], em[use], bv[use]
        dd = (ev - a_evt[em]) & 0xFFFFFFFF
        dd = np.where(dd >= 0x80000000, dd - 0x100000000, dd)
        t_us = a_us[em] + (dd * _US) // 1024
        st.hr_msgs.set_arrays(t_us, bv, self.clock.runs_at(mpos)[0][em])
        return True

    def fd_last_timestamp(self, idx: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """fitdecode's ``last_timestamp`` just before the messages at ``idx`` (file order):
        the last non-invalid native field 253 of the same FIT file, else 0."""
        n = self.pos.size
        last = np.maximum.accumulate(np.where(self.upd_ok, np.arange(n), -1))
        before = np.where(idx > 0, last[np.maximum(idx - 1, 0)], -1)
        starts = np.array([b for _, b in self.s.parts], dtype=np.int64)
        part_first = np.searchsorted(self.pos, starts)  # first message of each FIT file
        mine = part_first[np.searchsorted(starts, self.pos[idx], side="right") - 1]
        return np.where(before >= mine, self.upd_val[np.maximum(before, 0)], 0)

    def hr_quirks(self) -> None:
        """fitdecode expands ``hr.event_timestamp_12`` from the timestamp it last saw before an
        ``hr.event_timestamp`` field (same FIT file) and fails (AssertionError/TypeError) where
        that is 0 or the field is all 0xFF. Such files take the reference path."""
        defs = self.by_global.get(_HR, [])
        if not any(d.last(10) is not None for d in defs):
            return
        starts = np.array([b for _, b in self.s.parts], dtype=np.int64)
        parts = []
        for d in defs:
            nums = [f.num for f in d.fields]
            if any(nums.count(x) > 1 for x in (9, 10, _F_TS)):
                raise ff.Fallback("hr messages with repeated fields")
            idx = self.where[d.index]
            n = idx.size
            i9 = nums.index(9) if 9 in nums else -1
            i10 = nums.index(10) if 10 in nums else -1
            its = nums.index(_F_TS) if _F_TS in nums else -1
            at9 = np.zeros(n, np.int64)
            if i9 >= 0:
                at9 = self.fd_last_timestamp(idx)
                if 0 <= its < i9:
                    at9 = np.where(self.upd_ok[idx], self.upd_val[idx], at9)
            bad10 = np.zeros(n, bool)
            if i10 >= 0:
                bad10 = ~ff.column(self.s, d, d.fields[i10]).valid
            flags = [np.full(n, i9 >= 0), at9, np.full(n, i10 >= 0)]
            parts.append((d.offsets, [*flags, np.full(n, 0 <= i9 < i10), bad10]))
        pos, (has9, at9, has10, nine_first, bad10) = _merge(parts)
        part = np.searchsorted(starts, pos, side="right") - 1
        idx = np.arange(pos.size)
        prev9 = np.maximum.accumulate(np.where(has9, idx, -1))
        prev9 = np.concatenate(([-1], prev9[:-1]))  # strictly before
        prior = np.where(
            (prev9 >= 0) & (part[np.maximum(prev9, 0)] == part), at9[np.maximum(prev9, 0)], 0
        )
        start = np.where(nine_first, at9, prior)
        if np.any(has10 & (bad10 | (start <= 0))):
            raise ff.Fallback("an hr.event_timestamp_12 the reference decoder rejects")

    # -- messages read one by one (in file order, with the definitions' warnings) ----------

    def one_by_one(self) -> None:
        s, st = self.s, self.st
        events = self.events
        hr_columns = self.hr()
        for at, key, text in s.warnings:
            events.append((at, 0, (key, text)))
        singles = [
            d
            for d in self.used
            if d.global_num in _SMALL
            or (d.global_num == _HR and not hr_columns)
            or (d.global_num == _DEVICE_INFO and self.few_device_infos)
        ]
        for d in singles:
            for i, p in enumerate(d.offsets.tolist()):
                events.append((p, 1, (d, i)))
        if not events:
            return
        events.sort(key=lambda e: e[0])
        if not hr_columns:
            self.hr_quirks_one_by_one(events)
        where = np.array([p for p, kind, _ in events if kind == 1], dtype=np.int64)
        cur_a, rfr_a = self.clock.runs_at(where)
        cur_l, rfr_l = cur_a.tolist(), rfr_a.tolist()
        k = 0
        data = s.data
        for p, kind, pl in events:
            if kind == 0:
                st.warn_once(*pl)
                continue
            d, i = pl
            j = int(self.where[d.index][i])
            t = int(self.ts_val[j]) if self.ts_ok[j] else None
            raws = ff.raw_values(data, p, d)
            raw = {f.num: r for f, r in zip(d.fields, raws, strict=True)}
            if self.comp[j]:
                raw[_F_TS] = t
            cur, rfr = cur_l[k], rfr_l[k]
            k += 1
            if d.global_num == _HR:
                st.hr_raw(raw, t, cur)
            else:
                st.other_raw(d.global_num, raw, _lazy(d, raws), t, rfr, cur)

    def hr_quirks_one_by_one(self, events: list[tuple[int, int, Any]]) -> None:
        """:meth:`hr_quirks` message by message, field by field (any field layout)."""
        if not any(d.last(10) is not None for d in self.by_global.get(_HR, [])):
            return
        fk, fv = self.full_updates()
        starts = np.array([b for _, b in self.s.parts], dtype=np.int64)
        hr_start = 0
        part = -1
        data = self.s.data
        for p, kind, pl in events:
            if kind != 1 or pl[0].global_num != _HR:
                continue
            d = pl[0]
            this_part = int(np.searchsorted(starts, p, side="right")) - 1
            if this_part != part:
                part, hr_start = this_part, 0
            j = int(np.searchsorted(fk, 2 * p)) - 1
            last = int(fv[j]) if j >= 0 else 0
            for f, raw in zip(d.fields, ff.raw_values(data, p, d), strict=True):
                if f.num == _F_TS and raw is not None:
                    last = raw
                elif f.num == 9:
                    hr_start = last
                elif f.num == 10 and (raw is None or not hr_start > 0):
                    raise ff.Fallback("an hr.event_timestamp_12 the reference decoder rejects")


class _Values(Mapping[int, Any]):
    """``fit._values`` of one message, decoded on demand (callers read a few fields)."""

    def __init__(self, d: ff.Definition, raws: list[Any]) -> None:
        self.d, self.raws = d, raws
        self.last = {f.num: i for i, f in enumerate(d.fields)}

    def __getitem__(self, num: int) -> Any:
        return _decoded_one(self.d, self.raws, self.last[num])

    def __iter__(self) -> Iterator[int]:
        return iter(self.last)

    def __len__(self) -> int:
        return len(self.last)


def _lazy(d: ff.Definition, raws: list[Any]) -> Callable[[], Mapping[int, Any]]:
    return lambda: _Values(d, raws)
