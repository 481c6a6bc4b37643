"""Command line: `sdxlkit run`, `sdxlkit validate`, `sdxlkit demo`, `sdxlkit convert`. Runs without ComfyUI.

Exit codes: 0 done; 1 an error that is not the task's (a model file, the device, a file that cannot be written);
2 an invalid task (every problem with its JSON path) or a bad command line; 130 interrupted (Ctrl-C: the images
already written are kept); 141 the reader of the output went away (`| head`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

from . import __version__
from .errors import SdxlKitError, TaskValidationError, out_of_memory

DEMO_PROMPT = "a lighthouse on a cliff at sunset, dramatic sky"
EXIT_INVALID, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 130, 141
MODELS_ENV = "SDXLKIT_MODELS"


def _cache_dir() -> Path:
    return Path(os.environ.get("SDXLKIT_CACHE", Path.home() / ".cache" / "sdxlkit"))


@contextmanager
def _progress():
    """A tqdm bar fed by the engine's on_step(done, total) callback, cleared when the run ends, however it ends (an
    error's line then starts a line of its own)."""
    from tqdm import tqdm

    bar = None

    def on_step(done: int, total: int) -> None:
        nonlocal bar
        if bar is None or bar.total != total or done < bar.n:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, desc="sampling", unit="step", file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    try:
        yield on_step
    finally:
        if bar is not None:
            bar.close()


def _options(args):
    from .runner import RunOptions

    return RunOptions(models_dir=Path(args.models), out_dir=Path(args.out), device=args.device,
                      precision=args.precision, allow_urls=args.allow_urls, allow_pickle=args.allow_pickle,
                      memory="lowvram" if args.lowvram else "auto", compile=args.compile,
                      base_dir=getattr(args, "base_dir", None))


def _validated_tasks(document, base_dir: Path, skip_urls: bool) -> list:
    """What `validate` checks: the format, then run's checks that need no model file, every problem of every
    task at once (a task whose format is wrong is not checked further). http(s) images are refused as run refuses
    them, or with skip_urls left unread (validate does not download)."""
    from .runnable import check_task, task_root
    from .task.model import Task
    from .task.validate import checked_tasks

    tasks, problems = checked_tasks(document)
    for i, data in enumerate(tasks):
        if data is None:
            continue
        try:
            check_task(Task(data), task_root(i, len(tasks)), base_dir=base_dir, skip_urls=skip_urls)
        except TaskValidationError as exc:
            problems += exc.problems
    if problems:
        raise TaskValidationError(problems)
    return tasks


def cmd_validate(args) -> int:
    from .task.model import read_task_document

    tasks = _validated_tasks(read_task_document(args.task), Path(args.task).resolve().parent, args.allow_urls)
    print(f"{args.task}: {len(tasks)} valid imageInference task(s)")
    return 0


def _message(error: BaseException) -> str:
    """An error's line: an engine error whole, another's first line, and for running out of memory what helps."""
    if isinstance(error, SdxlKitError):
        return str(error)
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text + (" (try --lowvram, or a smaller width x height)" if out_of_memory(error) else "")


def _print_written(result: dict) -> None:
    from tqdm import tqdm

    if "imageURL" in result:
        tqdm.write(f"wrote {result['imageURL']}", file=sys.stderr)  # above the progress bar, which goes on


def cmd_run(args) -> int:
    from .api.errors import error_response
    from .runnable import with_absolute_image_paths
    from .runner import run_tasks
    from .task.model import Task, load_tasks

    args.base_dir = Path(args.task).resolve().parent
    # images named relative to the task file stay found when an output image's embedded task runs again
    tasks = [Task(with_absolute_image_paths(task.data, args.base_dir)) for task in load_tasks(args.task)]
    results, errors = [], []

    def done(result: dict) -> None:
        results.append(result)
        _print_written(result)

    def failed(task, error: Exception) -> None:
        """The other tasks still run, and every finished image is answered (inline ones exist nowhere else)."""
        from tqdm import tqdm

        if len(tasks) == 1 and not results:
            raise error  # nothing finished: the error alone, as any other
        if not (isinstance(error, SdxlKitError) or out_of_memory(error)):  # not the user's: where it came from
            tqdm.write("".join(traceback.format_exception(error)).rstrip(), file=sys.stderr)
        tqdm.write(f"error: task {task.uuid}: {_message(error)}", file=sys.stderr)
        errors.extend(error_response(error, task_uuid=task.uuid)[0]["errors"])

    try:
        with _progress() as on_step:
            run_tasks(tasks, _options(args), on_step=on_step, on_result=done, on_error=failed)
    except KeyboardInterrupt:
        if results:
            print(json.dumps({"data": results}, indent=2))
        raise
    print(json.dumps({"data": results} | ({"errors": errors} if errors else {}), indent=2))
    return 1 if errors else 0


def _tiny_checkpoint() -> Path:
    from .tiny import build_tiny_components, write_single_file

    path = _cache_dir() / "demo" / "tiny-random-sdxl.safetensors"
    if not path.exists():
        print(f"writing a tiny random-weight SDXL checkpoint to {path}", file=sys.stderr)
        write_single_file(build_tiny_components("tiny", seed=0), path)
    return path


def _given(value: int | None, default: int) -> int:
    return default if value is None else value  # 0 is given: the task's check refuses it


def cmd_demo(args) -> int:
    from .runner import run_tasks
    from .task.model import new_task_uuid, parse_tasks

    if args.checkpoint:
        checkpoint = Path(args.checkpoint).resolve()
        size, steps = _given(args.size, 1024), _given(args.steps, 30)
    else:
        checkpoint = _tiny_checkpoint()
        size, steps = _given(args.size, 256), _given(args.steps, 20)
        print("NOTE: this demo model has RANDOM weights: the image shows the pipeline ran end to end, not a picture. "
              "Run `sdxlkit demo --checkpoint YOUR_SDXL.safetensors` for a real one.", file=sys.stderr)
    task = {"taskType": "imageInference", "taskUUID": new_task_uuid(), "model": str(checkpoint),
            "positivePrompt": DEMO_PROMPT, "negativePrompt": "blurry, low quality", "width": size, "height": size,
            "steps": steps, "CFGScale": 6.5, "seed": args.seed, "outputType": "URL", "outputFormat": "PNG"}
    args.models = args.models or str(checkpoint.parent)
    with _progress() as on_step:
        results = run_tasks(parse_tasks(task), _options(args), on_step=on_step, on_result=_print_written)
    print(json.dumps({"data": results}, indent=2))
    return 0


def cmd_convert(args) -> int:
    from .graph.convert import convert, detect_format, read_document
    from .graph.mapping import ConvertOptions

    source = Path(args.file)
    if not source.is_file():
        raise SdxlKitError(f"cannot read {source}: no such file")
    options = ConvertOptions(input_dir=args.input_dir and Path(args.input_dir), models_dir=args.models and Path(args.models),
                             images=args.images, base_dir=source.resolve().parent)
    document, prompt = read_document(source)
    if detect_format(document) == "task":  # refused as `validate` refuses it, before images are written
        _validated_tasks(document, options.base_dir, skip_urls=True)
    text = json.dumps(convert(document, args.to, options, prompt), indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    # -v is accepted before and after the subcommand; SUPPRESS keeps a subcommand from resetting the top-level one
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what is loaded and why")
    parser = argparse.ArgumentParser(
        prog="sdxlkit", description="Run SDXL imageInference tasks locally (no ComfyUI needed).",
        epilog=f"Models are read from --models DIR, by default ${MODELS_ENV} or ./models. Exit codes: 0 done, "
               f"1 error, {EXIT_INVALID} invalid task or command line, {EXIT_INTERRUPTED} interrupted.")
    parser.add_argument("--version", action="version", version=f"sdxlkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is loaded and why")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,validate,demo,convert}")
    models_env = os.environ.get(MODELS_ENV)

    def run_flags(p, models_default, models_help):
        p.add_argument("--models", default=models_default, help=models_help)
        p.add_argument("--out", default="output", help="folder for images when outputType is URL (default: ./output)")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ... (default: cuda if available, else cpu)")
        p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                       help="auto: fp32 on the CPU, bf16 on a GPU that supports it (else fp32)")
        p.add_argument("--allow-urls", action="store_true", help="let tasks reference http(s) image URLs")
        p.add_argument("--allow-pickle", action="store_true", help="allow .ckpt/.pt weight files (they can run code)")
        speed_or_memory = p.add_mutually_exclusive_group()  # lowvram's streaming hooks cannot be compiled
        speed_or_memory.add_argument(
            "--compile", action="store_true", help="GPU: compile the UNet's repeated blocks (first run per image size "
                                                   "takes longer; the compiled code is cached on disk, see "
                                                   "$SDXLKIT_COMPILE_CACHE)")
        speed_or_memory.add_argument(
            "--lowvram", action="store_true", help="GPU with little memory: stream the UNet in layer by layer and "
                                                   "bring the other parts in only while they run (slower)")

    task_help = "a task JSON file (one task or an array), or an image saved by sdxlkit (it carries its task and seed)"
    p = sub.add_parser("run", parents=[verbose], help="run tasks and print the results as JSON",
                       description="Run imageInference tasks: every task is checked (fields, images, model files) "
                                   "before a model loads; each image is written as soon as it is done.")
    p.add_argument("task", metavar="TASK", help=task_help)
    run_flags(p, models_env or "models", f"models folder (checkpoints/, vae/, loras/, controlnet/, sdxlkit_models.json); "
                                         f"default: ${MODELS_ENV}" + (f" ({models_env})" if models_env else ", else ./models"))
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", parents=[verbose], help="check tasks as run does, without loading a model",
                       description="Check tasks as `run` does before it loads a model: the format, fields this "
                                   "version cannot run, schedulers, images (http(s) URLs are not downloaded) and their "
                                   f"sizes. Exits {EXIT_INVALID} listing every problem with its JSON path; model files "
                                   "are checked by run.")
    p.add_argument("task", metavar="TASK", help=task_help)
    p.add_argument("--allow-urls", action="store_true", help="accept http(s) image URLs as run --allow-urls does "
                                                             "(they are not downloaded)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("demo", parents=[verbose], help="run a demo task end to end (a tiny random-weight model unless --checkpoint)")
    p.add_argument("--checkpoint", help="a real SDXL checkpoint (.safetensors) or diffusers folder")
    p.add_argument("--size", type=int, help="width and height (default 256 tiny, 1024 real)")
    p.add_argument("--steps", type=int, help="denoising steps (default 20 tiny, 30 real)")
    p.add_argument("--seed", type=int, default=42)
    run_flags(p, None, "models folder for ids in the task (default: the checkpoint's folder)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("convert", parents=[verbose], help="convert between a task, a ComfyUI API prompt and a ComfyUI workflow")
    p.add_argument("file", metavar="FILE", help="a task JSON (object or array), an API prompt, a UI workflow, or an image carrying one")
    p.add_argument("--to", required=True, choices=["task", "api", "workflow"])
    p.add_argument("--input-dir", help="ComfyUI's input folder: task images are written there, graph images read from "
                                       "it (needed only when there are images)")
    p.add_argument("--models", help="models folder: map model ids (civitai:...) to file names and back "
                                    "(default: copy references as they are)")
    p.add_argument("--images", choices=["data_uri", "file"], default="data_uri",
                   help="how a task gets the graph's images: PNG data URIs (default) or absolute file paths")
    p.add_argument("--out", help="write the result to this file (default: print it)")
    p.set_defaults(func=cmd_convert)
    return parser


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at devnull so that Python's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a file (an in-process caller captured it): nothing will flush it


def _main(argv: list[str] | None) -> int:
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1")):
        os.environ.setdefault(name, value)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except TaskValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except SdxlKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the images finished are kept (written ones on disk, their results printed)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a file that cannot be read or written: the system's reason is the message
        if isinstance(exc, BrokenPipeError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # torch.OutOfMemoryError is one
        if not out_of_memory(exc):
            raise
        print(f"error: {_message(exc)}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is seen below (also after --help)
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
