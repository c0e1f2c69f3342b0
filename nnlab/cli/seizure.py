"""`nnlab seizure ...`: EEG seizures. `bonn`: k-fold cross-validated segment classification on the
Bonn sets with the three-tower transformer. `prepare | train | evaluate | detect`: patient-specific
seizure prediction on long recordings (CHB-MIT layout), leave one seizure out. `split`: an EDF+D
recording's continuous pieces as EDF+C files. Each command is registered on the one `seizure`
group in `register`; a new command adds its function and one line there."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer

from nnlab.cli.common import (
    DeviceOpt,
    apply,
    config_params,
    console,
    group,
    table,
    train_command,
)
from nnlab.errors import NNLabError
from nnlab.run import RunDir


def show_bonn(runner, summary) -> None:
    rows = summary["rows"]
    data = summary.get("data", "Bonn")  # runs made before folder datasets: Bonn
    console.print(table(rows, f"{data} {summary['pair']}: test folds"))
    sd = {m: summary[f"{m}_sd"] for m in ("acc", "sensitivity", "specificity", "auc")}
    pooled = summary["pooled"]
    negative, positive = summary.get("classes", ("non-seizure", "seizure"))  # older runs: Bonn
    console.print(
        f"mean over {summary['folds_run']} of {summary['folds']} folds: "
        f"accuracy {summary['acc']:.4f} ± {sd['acc']:.4f}, "
        f"sensitivity {summary['sensitivity']:.4f} ± {sd['sensitivity']:.4f}, "
        f"specificity {summary['specificity']:.4f} ± {sd['specificity']:.4f}, "
        f"AUC {summary['auc']:.4f}; {pooled['errors']} of {pooled['segments']} test segments "
        f"wrong ({pooled['false_negatives']} {positive} called {negative}, "
        f"{pooled['false_positives']} {negative} called {positive})"
    )
    gates = [{"true class": name, **values} for name, values in summary["gates_by_class"].items()]
    console.print(table(gates, "mean gate weight of each tower"))
    console.print(f"wall time {summary['wall_s']:.0f} s")


# ---- seizure prediction ------------------------------------------------------------------------
# what `prepare` needs of the prediction config: data, labels and the front end
PREPARE_SKIP = (
    "fold",
    "val_fraction",
    "guard_s",
    "threshold",
    "alarm_k",
    "alarm_n",
    "refractory_s",
    "model",
)


def prepare_command():
    from nnlab.tasks.seizure import SeizureConfig

    defaults = SeizureConfig()

    def prepare(**given) -> None:
        from nnlab.tasks.seizure import prepare_patient, prepare_rows

        cfg = apply(defaults, {k: v for k, v in given.items() if v is not None})
        prep = prepare_patient(cfg, console)
        rows, note = prepare_rows(prep, cfg)
        console.print(table(rows, f"{cfg.patient}: windows per recording"))
        console.print(note)

    prepare.__signature__ = inspect.Signature(
        config_params(SeizureConfig, defaults, "Data, labels and front end", skip=PREPARE_SKIP)
    )
    prepare.__doc__ = (
        "Index a patient (common channels by label), resample to the model's rate, cut 5-s "
        "windows, cache their log spectrograms per recording and label them preictal / "
        "interictal / excluded; a table of the counts per recording."
    )
    return prepare


def show_seizure(runner, summary) -> None:
    console.print(table(summary["rows"], f"{summary['patient']}: held-out folds"))
    console.print(table(summary["gates"], "mean gate weight of each tower per true class"))
    if summary.get("target") == "detection":
        late = summary["median_latency_s"]
        how = "detected" + (f", median latency {late:.1f} s" if late is not None else "")
        when = ""
    else:
        how, when = "predicted", f", time in warning {summary['time_in_warning']:.3f}"
    console.print(
        f"leave one seizure out, {summary['folds']} folds: {summary['seizures_predicted']} of "
        f"{summary['folds']} seizures {how} (event sensitivity "
        f"{summary['event_sensitivity']:.3f}), {summary['false_alarms']} false alarms in "
        f"{summary['interictal_h']:.2f} interictal hours ({summary['fpr_per_h']:.3f}/h){when}; "
        "windows: sensitivity "
        f"{summary['segment/sensitivity']:.3f}, specificity {summary['segment/specificity']:.3f}, "
        f"precision {summary['segment/precision']:.3f}, AUC {summary['segment/auc']:.3f} "
        f"(alarms: {summary['alarm_k']} of {summary['alarm_n']} windows at p >= "
        f"{summary['threshold']:g}, refractory {summary['refractory_s']:g} s)"
    )


def evaluate(
    run_dir: Path = typer.Argument(..., help="A `nnlab seizure train` run directory."),
    threshold: Optional[float] = typer.Option(
        None, help="P(preictal) of a positive window (default: the run's)."
    ),
    alarm_k: Optional[int] = typer.Option(None, help="k of the k-of-n rule (default: the run's)."),
    alarm_n: Optional[int] = typer.Option(None, help="n of the k-of-n rule (default: the run's)."),
) -> None:
    """Alarms and scores of a leave-one-seizure-out run from its folds' held-out windows: event
    sensitivity, false alarms per interictal hour, time in warning, segment scores, gate weights;
    a timeline per recording. Rewrites the run's summary and report."""
    from nnlab.report import write_report
    from nnlab.tasks.seizure import evaluate_run

    run = RunDir.open(run_dir)
    summary = evaluate_run(run, threshold, alarm_k, alarm_n)
    show_seizure(None, summary)
    console.print(f"report: {Path(write_report(run)).resolve()}")


def detect(
    edfs: list[Path] = typer.Argument(
        ...,
        help="EDF/EDF+ (or BDF) recordings of any length, rate and montage, or folders of them "
        "(subfolders included).",
        metavar="EDF",
    ),
    model: Path = typer.Option(..., "--model", help="A seizure run (or one fold of it)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Output folder (default RUN/detections)."
    ),
    fold: int = typer.Option(-1, min=-1, help="Use fold k's model only (default: every fold's)."),
    threshold: Optional[float] = typer.Option(
        None, help="P(preictal) of a positive window (default: the run's)."
    ),
    channels: Optional[str] = typer.Option(
        None,
        help="Comma-separated labels a single-channel model reads (default: every EEG channel); "
        "a pair such as FP1-F7 is derived from two referential channels when the file has no such "
        "channel; double-banana names the 18 longitudinal pairs.",
    ),
    hop_s: Optional[float] = typer.Option(
        None,
        help="Seconds between window starts (default: a prediction run's window; a detection "
        "model's window / 4).",
    ),
    alarm_k: Optional[int] = typer.Option(
        None, help="k of the k-of-n alarm rule (default: the run's; a Bonn model: 3)."
    ),
    alarm_n: Optional[int] = typer.Option(
        None, help="n of the k-of-n alarm rule (default: the run's; a Bonn model: 4)."
    ),
    refractory_s: Optional[float] = typer.Option(
        None, help="No new alarm this long after one (default: the run's; a Bonn model: 60 s)."
    ),
    summary: Optional[Path] = typer.Option(
        None,
        help="A CHB-MIT chbNN-summary.txt (or a Siena Seizures-list-PNxx.txt, one file's TUH "
        ".csv_bi, or one annotator's table of the Helsinki neonatal set) listing the files: their "
        "seizures are drawn and each one's alarm latency and the false alarms are reported, with "
        "totals over the files. Without it, a TUH .csv_bi or .tse_bi file beside an EDF file "
        "(same name), a BIDS X_events.tsv beside X_eeg.edf, or the Helsinki set's per-second "
        "tables beside eegN.edf (a second ictal when most annotators mark it) are read for that "
        "file.",
    ),
    seizures: Optional[str] = typer.Option(
        None,
        help="One file's seizures as ONSET-OFFSET seconds from its start, comma-separated (e.g. "
        "2996-3036,4100.5-4160), for annotations in another format than --summary's.",
    ),
    overwrite: bool = typer.Option(False, help="Replace outputs that exist already."),
    resume: bool = typer.Option(
        False,
        help="Skip the recordings done before with the same arguments (their results are read "
        "back for the totals); an interrupted one is made again.",
    ),
    device: str = DeviceOpt,
) -> None:
    """Run a trained model on recordings: each resampled to the model's rate, channels by label
    or, in a file of another montage, renamed, reversed or derived from two channels on one
    reference (a single-channel model reads every EEG channel -- ECG, EOG, oximetry, annotation
    and flat channels left out -- and the maximum probability over channels decides); writes
    per-window probabilities (CSV), the alarms (CSV) and a timeline figure per file; with
    annotations (--summary, or TUH / BIDS / Helsinki files beside the recordings), each seizure's
    alarm latency and the false alarms, and their totals."""
    from nnlab.tasks.seizure import detect_file, detection_totals

    files = []
    for path in edfs:
        if path.is_dir():  # its recordings, also in subfolders (a TUH session/montage tree)
            inside = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in (".edf", ".bdf") and p.is_file()
            )
            if not inside:
                raise NNLabError(f"{path}: no .edf or .bdf files in this folder or below it")
            files += inside
        elif path.is_file():
            files.append(path)
        else:
            raise NNLabError(f"{path}: no such EDF file or folder")
    stems = [f.stem for f in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:  # the outputs are named by the recording's stem
        raise NNLabError(f"two recordings named {twice[0]} (outputs are named by file name)")
    if seizures is not None and len(files) > 1:
        raise NNLabError(f"--seizures gives one file's seizures; {len(files)} files were given")
    if summary is not None:  # every file listed, before any is read
        from nnlab.data.eeg import read_summary

        listed = {f.name for f in read_summary(summary).files}
        unlisted = [f.name for f in files if f.name not in listed]
        if unlisted:
            raise NNLabError(f"{summary} does not list {', '.join(unlisted)}")
    picked = [c.strip() for c in channels.split(",") if c.strip()] if channels else None
    spans = None
    if seizures is not None:
        spans = []
        for part in filter(None, (p.strip() for p in seizures.split(","))):
            on, _, off = part.partition("-")
            try:
                spans.append((float(on), float(off)))
            except ValueError:
                raise NNLabError(
                    f"--seizures: '{part}' is not ONSET-OFFSET seconds (e.g. 2996-3036)"
                ) from None
    run = RunDir.open(model)
    every, failed = [], []
    for edf in files:
        try:
            found = detect_file(
                edf,
                run,
                out,
                fold,
                device,
                overwrite,
                threshold,
                channels=picked,
                console=console,
                hop_s=hop_s,
                alarm_k=alarm_k,
                alarm_n=alarm_n,
                refractory_s=refractory_s,
                summary=summary,
                seizures=spans,
                resume=resume,
            )
        except NNLabError as e:
            if len(files) == 1:
                raise
            console.print(f"{edf.name}: skipped: {e}", highlight=False)
            failed.append(edf.name)  # the other files are still read
            continue
        show_detection(found)
        every.append(found)
    if len(every) > 1 and any(f["events"] is not None for f in every):
        t = detection_totals([f for f in every if f["events"] is not None])  # the scored ones
        late = t["median_latency_s"]
        console.print(
            f"{t['files']} annotated file(s), {t['hours']:.2f} h: {t['found']} of "
            f"{t['seizures']} seizures found"
            + (f" (median latency {late:+.1f} s)" if late is not None else "")
            + f", {t['false_alarms']} false alarms ({t['false_per_h']:.2f} per hour outside "
            "seizures)"
        )
    if failed:
        raise NNLabError(f"{len(failed)} of {len(files)} files skipped: {', '.join(failed)}")


def show_detection(found: dict) -> None:
    alarms = ", ".join(f"{a:.0f} s" for a in found["alarms_s"]) or "none"
    console.print(
        ("(done before, read back) " if found.get("resumed") else "")
        + f"{found['file']}: {found['duration_s']:.0f} s at {found['file_fs']:g} Hz -> "
        f"{found['model_fs']:g} Hz, {len(found['channels'])} channel(s) ({found['rule']}), "
        f"{found['models']} model(s); {found['windows']} {found['window_s']:.3g}-s windows every "
        f"{found['hop_s']:.3g} s, {found['positive']} positive; alarms ({found['alarm_k']} of "
        f"{found['alarm_n']}, refractory {found['refractory_s']:g} s) at {alarms}"
    )
    gaps = found.get("gaps") or []  # an EDF+D file's, read stretch by stretch
    if gaps:
        console.print(
            f"  {len(gaps) + 1} continuous stretches over {found['span_s']:.0f} s; not recorded: "
            + ", ".join(f"{a:.0f}-{b:.0f} s" for a, b in gaps)
        )
    if found["events"] is not None:
        if found["sidecar"] is not None:
            console.print(f"  seizures from {found['sidecar']}", highlight=False)
        for e in found["events"]["seizures"]:
            late = e["latency_s"]
            console.print(
                f"  seizure {e['onset_s']:.0f}-{e['offset_s']:.0f} s: "
                + ("no alarm" if late is None else f"first alarm {late:+.0f} s from the onset")
            )
        console.print(f"  false alarms: {found['events']['false_alarms']}")
    for name, mean in found["gates"].items():
        if mean is not None:
            weights = ", ".join(f"{t} {w:.2f}" for t, w in mean.items())
            console.print(f"  mean gate weights of the {name} windows: {weights}")
    if found["skipped"]:
        console.print(f"  left out: {', '.join(found['skipped'])}")
    if found["flat"]:
        console.print(
            f"  flat all along, read anyway (the model needs them): {', '.join(found['flat'])}"
        )
    if found["derived"]:
        console.print(
            f"  {len(found['derived'])} channel(s) found under another label or derived: "
            + "; ".join(found["derived"]),
            highlight=False,
        )
    for path in found["outputs"]:
        console.print(f"  {path}")


def split(
    edf: Path = typer.Argument(..., help="An EDF+D (or BDF+D) recording with gaps in time."),
    out: Optional[Path] = typer.Option(
        None, help="Folder for the pieces (default: <file's folder>/<stem>_parts)."
    ),
    overwrite: bool = typer.Option(False, help="Replace pieces written before."),
) -> None:
    """Write each continuous piece of a discontinuous EDF+D recording as its own EDF+C file,
    <stem>_part01.edf, ... (data records copied byte for byte; each piece's header starts at its
    own time; the file's other annotations are not carried over), so that prepare, train and
    detect read them."""
    from nnlab.data.eeg import split_discontinuous

    out = out if out is not None else edf.parent / f"{edf.stem}_parts"
    pieces = split_discontinuous(edf, out, overwrite)
    rows = [
        {
            "piece": p["file"].name,
            "from s": round(p["onset_s"], 3),
            "to s": round(p["onset_s"] + p["duration_s"], 3),
            "duration s": round(p["duration_s"], 3),
        }
        for p in pieces
    ]
    console.print(table(rows, f"{edf.name}: {len(pieces)} continuous piece(s) in {out}"))


def register(app: typer.Typer) -> None:
    from nnlab.tasks.bonn import BonnCV
    from nnlab.tasks.seizure import SeizureCV

    seizure = group(
        "seizure",
        "EEG seizures: Bonn segment classification, and patient-specific seizure prediction "
        "(prepare, train, evaluate, detect) with the three-tower transformer.",
    )
    seizure.command("bonn")(
        train_command(
            BonnCV,
            "seizure",
            "Bonn segments (A vs E, D vs E, AD vs E), or any set of EEG segments (--data: class "
            "folders, one folder with --class-pattern, or a table; one channel or several): "
            "stratified k-fold cross-validation of the three-tower transformer on log "
            "spectrograms (one child run per fold); mean accuracy, sensitivity, specificity and "
            "the gate weights per class.",
            show=show_bonn,
        )
    )
    seizure.command("prepare")(prepare_command())
    seizure.command("train")(
        train_command(
            SeizureCV,
            "seizure",
            "Patient-specific seizure prediction: leave one seizure out (one child run per leading "
            "seizure: its preictal windows and a contiguous interictal block held out), the "
            "normaliser fitted on the fold's training windows, a balanced sampler; then the "
            "evaluation (alarms, event sensitivity, false alarms per hour, timelines).",
            show=show_seizure,
        )
    )
    seizure.command("evaluate")(evaluate)
    seizure.command("detect")(detect)
    seizure.command("split")(split)
    app.add_typer(seizure)
