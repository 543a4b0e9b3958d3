"""Alert identities, grouped and compressed (wecom_bot.storm): ranges a reader can expand."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_bot.storm import (
    ALERTS_KEY,
    MISSING,
    AlertBrief,
    attach,
    briefs_of,
    compress,
    cut_value,
    detach,
    expand,
    group_alerts,
    literal,
    read_message,
    unique_briefs,
)


def brief(**labels: str) -> AlertBrief:
    return AlertBrief({"alertname": "HighLatency", **labels}, "firing", 1.7e9)


def test_numeric_runs_become_ranges() -> None:
    assert compress([f"host-{i}" for i in range(1000)]) == ["host-[0-999]"]
    assert compress([f"10.0.3.{i}:9100" for i in range(1, 41)]) == ["10.0.3.[1-40]:9100"]
    assert compress(["host-1", "host-2", "host-3", "host-7", "host-9", "host-10"]) == [
        "host-[1-3,7,9-10]"
    ]
    # zero-padded numbers keep their width; several varying numbers group by the others
    assert compress([f"rack{r}-node{n:03d}" for r in (1, 2) for n in range(1, 6)]) == [
        "rack1-node[001-005]",
        "rack2-node[001-005]",
    ]


def test_values_without_a_run_stay_as_they_are() -> None:
    assert compress(["db", "cache", "db"]) == ["db", "cache"]  # repeats once
    assert compress(["host-1"]) == ["host-1"]
    assert compress(["id-12345678901234"]) == ["id-12345678901234"]  # an id, not a counter


def test_escaping_applies_to_values_never_to_the_range_syntax() -> None:
    esc = {"[": "［", "]": "］", "@": "＠"}
    entries = compress(["<@all>[1]", "x[1]-1", "x[1]-2"], lambda s: s.translate(str.maketrans(esc)))
    assert entries == ["<＠all>［1］", "x［1］-[1-2]"]


@given(
    st.lists(
        st.from_regex(r"\A[a-z.:-]{0,4}[0-9]{1,4}([a-z.:-]{1,3}[0-9]{0,2})?\Z"),
        min_size=1,
        max_size=200,
    )
)
@settings(max_examples=200, deadline=None)
def test_expand_gives_back_exactly_the_values(values: list[str]) -> None:
    entries = compress(values)
    back = [v for entry in entries for v in expand(entry)]
    assert sorted(back) == sorted(set(values))
    assert len(entries) <= len(set(values))


# Any text, weighted towards what the range syntax and a reader could trip on.
tricky = st.text(st.sampled_from('0123456789٣٤１[]-,"\\ \n\t\ue000\ue001ax'), max_size=8)


@given(st.lists(tricky | st.text(max_size=8), min_size=1, max_size=60))
@settings(max_examples=500, deadline=None)
def test_any_values_come_back_and_stay_apart(values: list[str]) -> None:
    back = [v for entry in compress(values) for v in expand(entry)]
    assert sorted(back) == sorted(set(values))  # each value once: none merged into another


def test_only_ascii_digits_are_numbers() -> None:
    # int() reads "٣" as 3: a range would show (and expand to) values that do not exist
    assert compress(["host-٣", "host-٤"]) == ["host-٣", "host-٤"]
    assert compress(["host-1", "host-٢", "host-3"]) == ["host-[1,3]", "host-٢"]
    assert compress(["host-1", "host-2"]) == ["host-[1-2]"]


def test_the_range_placeholders_in_a_value_are_kept_and_never_become_brackets() -> None:
    values = ["a\ue000", "a", "\ue000x\ue001(http://e)", "\ue0001-2\ue001", "1-2"]
    md = str.maketrans({"[": "［", "]": "］"})
    for esc in (str, lambda s: s.translate(md)):
        entries = compress(values, esc)
        assert len(entries) == 5 and sorted(entries) == sorted(esc(v) for v in values)
        assert not any("[" in e for e in entries)  # no link, no range out of a value
    assert sorted(v for e in compress(values) for v in expand(e)) == sorted(values)


def test_a_value_a_reader_could_misread_is_written_as_a_json_string() -> None:
    assert compress(["", "host-1", "host-2"]) == ['""', "host-[1-2]"]
    assert expand('""') == [""]
    assert expand('instance: "", host-[1-2]') == ["instance:", ",", "host-1", "host-2"]
    # a missing label is "-"; a value "-" is not that
    assert compress([None, "-", "x"]) == [MISSING, '"-"', "x"]
    severities = [brief(instance="a", severity=""), brief(instance="b")]
    assert group_alerts(severities)[0].severities == {"": 1, None: 1}
    assert literal(None, lambda s: "－" if s == "-" else s) == "－"
    assert literal("－", lambda s: "－" if s == "-" else s) == '"－"'
    # whitespace, quotes and brackets: one value, never split into words or read as a range
    written = compress(["disk C", "a\nb", '"q"', "a[1-2]", "x y1", "x y2"])
    assert written == ['"disk C"', '"a\\nb"', '"\\"q\\""', '"a[1-2]"', '"x y1"', '"x y2"']
    assert expand(" ".join(written)) == ["disk C", "a\nb", '"q"', "a[1-2]", "x y1", "x y2"]


def test_groups_state_shared_labels_once_and_find_what_tells_alerts_apart() -> None:
    alerts = [
        brief(instance=f"host-{i}", job="api", severity=("critical", "warning")[i % 2])
        for i in range(10)
    ] + [AlertBrief({"alertname": "DiskFull", "instance": "db-1"}, "resolved", 1.6e9)]
    firing, resolved = group_alerts(alerts)
    assert (firing.alertname, firing.status, firing.count) == ("HighLatency", "firing", 10)
    assert firing.shared == {"job": "api"}
    assert firing.keys == ["instance"]  # severity has a section of its own
    assert firing.severities == {"critical": 5, "warning": 5}
    critical, warning = firing.sections()
    assert (critical.severity, critical.count, critical.names) == ("critical", 5, ("instance",))
    assert [line.text for line in critical.lines] == ["host-[0,2,4,6,8]"]
    assert [line.text for line in warning.lines] == ["host-[1,3,5,7,9]"]
    assert (resolved.alertname, resolved.status, resolved.keys) == ("DiskFull", "resolved", [])


def test_several_identifying_labels_list_one_entry_per_combination() -> None:
    alerts = [brief(zone=z, instance=f"host-{i}") for z in ("a", "b") for i in range(3)]
    (group,) = group_alerts(alerts)
    assert group.keys == ["instance", "zone"]
    assert group.line_names == ("zone", "instance")
    assert group.entries() == ["a / host-[0-2]", "b / host-[0-2]"]


def test_a_label_that_tells_no_more_alerts_apart_is_not_listed() -> None:
    # "node" says what "instance" says: with it, every entry would be longer and no clearer
    alerts = [
        brief(zone=z, node=f"n-{i}", instance=f"host-{i}") for z in ("a", "b") for i in range(3)
    ]
    (group,) = group_alerts(alerts)
    assert group.keys == ["instance", "zone"]
    assert group.entries() == ["a / host-[0-2]", "b / host-[0-2]"]


def test_context_labels_are_on_every_line_even_when_other_labels_tell_alerts_apart() -> None:
    alerts = [
        brief(namespace=ns, pod=f"web-{i}", severity=sev)
        for ns, sev in (("shop-prod", "critical"), ("shop-canary", "warning"))
        for i in range(3)
    ]
    (group,) = group_alerts(alerts)
    assert group.context == ["namespace", "pod"] and group.keys == []
    critical, warning = group.sections()
    assert critical.names == ("namespace", "pod")
    assert [line.text for line in critical.lines] == ["shop-prod / web-[0-2]"]
    # the namespace alone tells these apart: it is the line
    alerts = [brief(namespace=ns, severity="critical") for ns in ("a", "b", "c")]
    (group,) = group_alerts(alerts)
    assert group.keys == [] and group.entries() == ["a, b, c"]
    # a pod is named even when its namespace alone tells it from the others
    alerts = [brief(namespace=ns, pod=f"{ns}-web-0") for ns in ("a", "b")]
    (group,) = group_alerts(alerts)
    assert group.entries() == ["a / a-web-0", "b / b-web-0"]
    # with pods of several namespaces each, a line is a namespace and its pods
    alerts = [brief(namespace=ns, pod=f"web-{i}") for ns in ("a", "b") for i in range(3)]
    (group,) = group_alerts(alerts)
    assert group.line_names == ("namespace", "pod")
    assert group.entries() == ["a / web-[0-2]", "b / web-[0-2]"]


def test_pods_of_one_workload_are_listed_after_its_name() -> None:
    pods = ["checkout-67e7893f5-ktr4c", "checkout-69602d1ba-m92td", "node-exporter-x7k2p",
            "node-exporter-b2c4d", "db-0", "db-1", "lonely-7d9f8c6b4-abcde"]  # fmt: skip
    (group,) = group_alerts([brief(namespace="shop", pod=p) for p in pods])
    lines = group.sections()[0].lines
    assert [line.text for line in lines] == [
        "checkout-* (2): 67e7893f5-ktr4c, 69602d1ba-m92td",
        "node-exporter-* (2): b2c4d, x7k2p",
        "db-[0-1], lonely-7d9f8c6b4-abcde",
    ]
    # a line split across messages says which part it is
    assert lines[0].part(1, 2).text == "checkout-* (2，续): 69602d1ba-m92td"


def test_a_missing_label_and_an_empty_one_tell_alerts_apart() -> None:
    alerts = [brief(x="", y="p"), brief(y="p"), brief(x="q", y="r"), brief(x="q", y="s")]
    (group,) = group_alerts(alerts)
    assert group.keys == ["x", "y"]
    assert group.entries() == ['p / "", -', "r / q", "s / q"]


def test_names_are_escaped_and_cut_like_values() -> None:
    name = "<@all> **" + "n" * 1000
    alerts = [brief(instance=f"host-{i}", **{name: z}) for z in ("a", "b") for i in range(3)]
    (group,) = group_alerts(alerts)
    assert group.line_names == (name, "instance")
    alerts = [brief(instance=f"host-{i}", zone=z + name) for z in ("a", "b") for i in range(3)]
    (group,) = group_alerts(alerts)
    entries = group.entries(lambda s: s.replace("@", "＠"), value_bytes=64)
    assert len(entries) == 2 and all("@" not in e and len(e.encode()) < 150 for e in entries)
    assert entries[0].startswith('"a<＠all> **nnn')
    assert entries[0].endswith('…(964 bytes more)" / host-[0-2]')
    # zones that differ only past the cut would read alike cut: they are written whole
    alerts = [brief(instance=f"host-{i}", zone=name + z) for z in ("a", "b") for i in range(3)]
    (group,) = group_alerts(alerts)
    entries = group.entries(lambda s: s.replace("@", "＠"), value_bytes=64)
    assert len(set(entries)) == 2 and all(
        e.endswith('a" / host-[0-2]') or e.endswith('b" / host-[0-2]') for e in entries
    )


def test_long_values_are_cut_with_what_is_left_out() -> None:
    cut = cut_value("x" * 10_000, 64)
    assert cut.endswith("bytes more)") and len(cut.encode()) <= 64 + 8
    assert cut_value("short", 64) == "short"


def test_briefs_ride_with_a_payload_and_leave_before_it_is_sent() -> None:
    payload = {"msgtype": "text", "text": {"content": "hi"}}
    briefs = [brief(instance="host-1"), brief(instance="host-1"), brief(instance="host-2")]
    carried = attach(payload, briefs)
    assert ALERTS_KEY in carried and detach(carried) == payload
    assert briefs_of(payload) is None
    again = briefs_of(carried)
    assert again == briefs
    assert unique_briefs([again, again[:1]]) == [briefs[0], briefs[2]]


def test_ten_thousand_alerts_compress_to_one_entry() -> None:
    alerts = [brief(instance=f"host-{i}") for i in range(10_000)]
    (group,) = group_alerts(alerts)
    assert group.entries() == ["host-[0-9999]"]
    # scattered numbers make long ranges: each stays short enough for a message
    alerts = [brief(instance=f"host-{i}", severity=("a", "b", "c")[i % 3]) for i in range(10_000)]
    (group,) = group_alerts(alerts)
    assert group.severities == {"a": 3334, "b": 3333, "c": 3333}
    items = [item for s in group.sections() for line in s.lines for item in line.items]
    assert len(items) > 3 and all(len(item) <= 500 for item in items)
    expanded = sorted(v for item in items for v in expand(item))
    assert expanded == sorted(f"host-{i}" for i in range(10_000))


def test_pods_of_one_replicaset_are_listed_after_its_name() -> None:
    pods = [f"web-7d9f8c6b4x-{s}" for s in ("abcde", "fghjk", "lmnpq")] + ["web-5c6d7f8g9h-xyzab"]
    pods += ["api-6b7c8d9f2g-qrstv", "api-8h9j2k3l4m-wxzbc"]
    (group,) = group_alerts([brief(namespace="shop", pod=p) for p in pods])
    assert group.entries() == [
        "api-* (2): 6b7c8d9f2g-qrstv, 8h9j2k3l4m-wxzbc",  # too few per set: by workload
        "web-7d9f8c6b4x-* (3): abcde, fghjk, lmnpq",
        "web-5c6d7f8g9h-xyzab",
    ]


def test_lines_of_one_place_are_written_under_its_heading() -> None:
    alerts = [
        brief(cluster=c, namespace=ns, container=k, pod=f"{k}-{i}")
        for c in ("eu", "us") for ns in ("shop", "pay") for k in ("app", "db") for i in range(2)
    ]  # fmt: skip
    (group,) = group_alerts(alerts)
    (section,) = group.sections()
    assert section.names == ("cluster", "namespace", "container", "pod")
    first = section.lines[0]
    assert (first.place, first.place_text, first.short) == (2, "eu / pay", "app / app-[0-1]")
    assert first.text == "eu / pay / app / app-[0-1]"
    # read back: the heading gives the lines under it their place
    text = (
        "🔥 X × 16\n级别 － × 16 · cluster / namespace / container / pod\n"
        "> 📍 eu / pay\n> app / app-[0-1]"
    )
    assert read_message(text) == [
        {"alertname": "X", "status": "firing", "cluster": "eu", "namespace": "pay",
         "container": "app", "pod": f"app-{i}"}
        for i in range(2)
    ]  # fmt: skip
