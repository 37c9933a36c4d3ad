"""The tally a chaos session prints, and bench/results/chaos.md."""

from __future__ import annotations

from typing import Any


def _kv(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def render_tally(r: dict[str, Any]) -> str:
    verdict = r["verdict"]["counts"]
    amp = r["write_amplification"]
    runs = r["runs"]["chaos"]
    web = r["webhooks"]
    lines = [
        f"== chaos on {r['ledger']}: {'PASSED' if r['passed'] else 'FAILED'}",
        f"seconds: {_kv(r['seconds'])}",
        f"faults injected, Intacct: {_kv(r['faults_injected']['intacct'])}",
        f"faults injected, Zendesk: {_kv(r['faults_injected']['zendesk'])}",
        f"requests, Intacct: {_kv(r['intacct_requests'])}",
        f"requests, Zendesk: {_kv(r['zendesk_requests'])}",
        f"Intacct sessions invalidated: {r['sessions'].get('invalidations', 0)} times "
        f"({r['sessions'].get('sessions_dropped', 0)} sessions); sessions opened: "
        f"{r['intacct_requests'].get('sessions_opened')}",
        f"kills: {r['kills']} ({_kv(r['kills_by_job'])})",
        f"runs during chaos: {runs['runs']} ({_kv(runs['by_status'])})",
        f"runs by job: {_kv({j: _kv(c) for j, c in runs['by_job'].items()})}",
        f"quiet pass: {', '.join(q['job'] + ' ' + q['status'] for q in r['quiet_pass'])}; "
        f"full reconciliation needed: {r['reconciliation_needed']}",
        f"traffic: {_kv(r['traffic'])}",
        f"webhooks: {_kv(web)}",
        "retries: each injected fault is answered by a client retry or a failed step "
        "(the clients do not expose a retry count outside the run)",
        f"duplicates {verdict['duplicate']}, lost {verdict['lost']}, wrong {verdict['wrong']}, "
        f"forged accepted {verdict['forged']}",
        f"write amplification: Intacct record writes {amp['intacct_record_writes']} for "
        f"{amp['records_changed']} records = {amp['record_writes_per_record_changed']}; "
        f"organization writes {amp['organization_writes']} for {amp['organizations_changed']} "
        f"organizations = {amp['organization_writes_per_organization_changed']} "
        f"(goal <= {amp['goal']}); against the most writes traffic could have needed "
        f"({amp['record_writes_needed_at_most']} and {amp['organization_writes_needed_at_most']})"
        f": {amp['record_writes_per_write_needed_at_least']} and "
        f"{amp['organization_writes_per_write_needed_at_least']}",
        f"checked: {_kv(r['verdict']['checked'])}",
    ]
    damage = r.get("damage_check")
    if damage is not None:
        lines.append(
            f"damage proof: {'exact' if damage['exact'] else 'NOT exact'}; "
            f"expected {damage['expected']}, reported {damage['reported']}"
        )
    for problem in r.get("problems", []):
        lines.append(f"  problem: {problem}")
    for finding in r["verdict"]["findings"][:20]:
        lines.append(
            f"  {finding['kind']} {finding['subject']} {finding['key']}: {finding['detail']}"
        )
    for tail in r.get("failed_run_tails", [])[:3]:
        lines.append("  failed run: " + tail.replace("\n", " | ")[-400:])
    return "\n".join(lines)


def render_markdown(payload: dict[str, Any]) -> str:
    m = payload["machine"]
    out = [
        "# `make chaos` results",
        "",
        f"Measured {payload['measured_at']} on {m['platform']}, {m['cpus']} CPUs, "
        f"Python {m['python']} (a machine shared with other work). Overall: "
        f"**{'PASSED' if payload['passed'] else 'FAILED'}**. Raw numbers: `chaos.json`.",
        "",
        "| | " + " | ".join(r["ledger"] for r in payload["runs"]) + " |",
        "|---|" + "---|" * len(payload["runs"]),
    ]

    def row(label: str, value: Any) -> None:
        out.append(f"| {label} | " + " | ".join(str(value(r)) for r in payload["runs"]) + " |")

    row("passed", lambda r: r["passed"])
    row(
        "chaos phase / quiet pass / total (s)",
        lambda r: "{} / {} / {}".format(
            r["seconds"].get("chaos_s"),
            r["seconds"].get("quiet_pass_s"),
            r["seconds"].get("total_s"),
        ),
    )
    row(
        "vendors / tickets seeded", lambda r: f"{r['config']['vendors']} / {r['config']['tickets']}"
    )
    row("fault rate", lambda r: r["config"]["fault_rate"])
    row("faults injected, Intacct", lambda r: _kv(r["faults_injected"]["intacct"]))
    row("faults injected, Zendesk", lambda r: _kv(r["faults_injected"]["zendesk"]))
    row("Intacct session invalidations", lambda r: r["sessions"].get("invalidations", 0))
    row("kills (SIGKILL inside writes)", lambda r: f"{r['kills']} ({_kv(r['kills_by_job'])})")
    row(
        "runs during chaos",
        lambda r: f"{r['runs']['chaos']['runs']} ({_kv(r['runs']['chaos']['by_status'])})",
    )
    row("traffic", lambda r: _kv(r["traffic"]))
    row("webhook abuse", lambda r: _kv(r["webhooks"]))
    row("full reconciliation needed", lambda r: r["reconciliation_needed"])
    row("duplicates", lambda r: r["verdict"]["counts"]["duplicate"])
    row("lost", lambda r: r["verdict"]["counts"]["lost"])
    row("wrong", lambda r: r["verdict"]["counts"]["wrong"])
    row("forged accepted", lambda r: r["verdict"]["counts"]["forged"])
    row(
        "Intacct record writes / records changed",
        lambda r: "{} / {} = **{}**".format(
            r["write_amplification"]["intacct_record_writes"],
            r["write_amplification"]["records_changed"],
            r["write_amplification"]["record_writes_per_record_changed"],
        ),
    )
    row(
        "organization writes / organizations changed",
        lambda r: "{} / {} = **{}**".format(
            r["write_amplification"]["organization_writes"],
            r["write_amplification"]["organizations_changed"],
            r["write_amplification"]["organization_writes_per_organization_changed"],
        ),
    )
    row(
        "damage proof (known damage reported exactly)",
        lambda r: (r.get("damage_check") or {}).get("exact"),
    )
    out += [
        "",
        "Write amplification goal (issue 13 item 1): at most 1.2 writes per object changed. "
        "Every record and organization counted was written at least once in the session; live "
        "traffic changed some of them again (see `traffic`), which even a perfect connector "
        "would write again, so the floor is a little above 1.0.",
        "",
    ]
    for r in payload["runs"]:
        findings = r["verdict"]["findings"]
        if findings:
            out.append(f"Findings on {r['ledger']} (first 20):")
            out.append("")
            out += [
                f"- {f['kind']} {f['subject']} {f['key']}: {f['detail']}" for f in findings[:20]
            ]
            out.append("")
    return "\n".join(out) + "\n"
