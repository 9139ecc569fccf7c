"""The conv-net study: SGD, AdamW and Muon on a small conv net, and the two conv scale rules."""

from __future__ import annotations

from .format import tex

ARM_LABELS = {"sgd": "SGD-Nesterov", "adamw": "AdamW", "muon-jordan": "Muon (Jordan)",
              "muon-polar-express": "Muon (Polar Express)",
              "muon-jordan-kj": "Muon (Jordan), Keller Jordan's conv scale"}


def cnn_numbers(summary: dict) -> dict[str, str]:
    """The table rows (accuracy with its 95% interval, rate, epochs to SGD's final, epoch
    time over SGD's), the protocol, and the paired rule comparison."""
    rows = []
    for r in summary["rows"]:
        lo, hi = r["test_acc_ci95"]
        e = r["epochs_to_sgd_final"]
        n = len(r["finals"])
        reach = ("--" if e is None else f"{e:.1f}") + f" ({r['reached']}/{n})"
        rows.append(f"{ARM_LABELS[r['arm']]} & {r['lr']:g} & "
                    f"{100 * r['test_acc_mean']:.2f} [{100 * lo:.2f}, {100 * hi:.2f}] & "
                    f"{reach} & {r['epoch_time_vs_sgd']:.2f}\\\\")
    rc = summary["rule_comparison"]
    lo, hi = rc["ci95"]
    return {"CNNRows": "\n".join(rows), "CNNData": tex(summary["data"]),
            "CNNEpochs": str(summary["epochs"]),
            "CNNSelectSeeds": str(len(summary["select_seeds"])),
            "CNNReportSeeds": str(len(summary["report_seeds"])),
            "CNNTarget": f"{100 * summary['target_acc']:.2f}",
            "CNNRuleDiff": f"{100 * rc['msign_minus_kj_mean']:+.2f}",
            "CNNRuleLo": f"{100 * lo:+.2f}", "CNNRuleHi": f"{100 * hi:+.2f}",
            "CNNRuleVerdict": tex(rc["verdict"])}
