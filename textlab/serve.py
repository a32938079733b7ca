"""Share a trained model: an HTTP API and a web page, safe under load.

    python -m textlab serve runs/            # every checkpoint in runs/, by name, on 127.0.0.1:8000

    server = serve_in_notebook({"shakespeare": (model, vocab)})   # the page, inline in a notebook
    server.stop()

Endpoints (FastAPI also documents them at ``/docs``): ``GET /health``, ``GET /models``,
``POST /generate``, ``POST /generate/bulk``, ``GET /generate/stream`` (server-sent events),
``POST /next-char`` and the page itself at ``/``.

Sampling never runs on the event loop. Each model has one worker thread (a ``Batcher``) with
a bounded queue: requests that share a prime and the same temperature / top-k / top-p are
sampled together, their rows stacked into one batch, so each step is one forward pass for all of
them. Each request brings its own seeded random numbers (``sampling.seeded_noise``), so the
same seed gives the same text whether it was batched or not. A request that would overfill the
queue is refused with 429 at once, rather than slowing everyone down.

FastAPI, uvicorn and pydantic are an optional extra: ``pip install textlab[serve]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import torch
import torch.nn as nn

from .checkpoints import CheckpointError, Loaded, list_models, load_checkpoint
from .config import TextlabError, in_colab
from .models import count_parameters
from .plots import show_char
from .sampling import check_params, generate_from, prime_ids, seeded_noise
from .training import kept_record
from .vocab import CharVocab, show_chars
from .widgets import CHART_BARS, model_pairs, next_char_bars

try:
    import uvicorn
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
    from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
except ImportError as err:  # the core package never imports this module
    raise ImportError("textlab serve needs the serve extra: pip install 'textlab[serve]' "
                      f"(missing: {err.name})") from None

# Limits on one request: pydantic turns a value outside them into a 422 naming the field and range.
MAX_PRIME = 1_000            # characters of prime
MAX_LENGTH = 2_000           # characters generated per sample
MAX_SAMPLES = 16             # samples per request
MAX_TOTAL_CHARS = 16_000     # length × num_samples per request
MAX_BULK = 16                # requests in one /generate/bulk
SEED_MAX = 2**63 - 1         # torch generators take any non-negative 64-bit seed
NAME_PATTERN = r"\w[\w.-]*"   # a model is a name (letters of any script), never a path: no / and no leading .
GPT2_MAX_WAITING = 4         # GPT-2 requests running or waiting at once (it samples one at a time)
PAGE = Path(__file__).with_name("serve_page.html")


@dataclass(frozen=True)
class Limits:
    """How much work the server accepts at once (per model), and for how long a request may run."""

    max_batch: int = 64          # rows sampled together in one forward pass
    max_queue: int = 256         # rows waiting for a model; a request that would pass it gets 429
    time_budget: float = 30.0    # seconds per request, waiting included (GPT-2 may finish the sample it is on)


# ---------------------------------------------------------------------------- requests and answers

class Knobs(BaseModel):
    """The sampling knobs, with the Python API's names and defaults (``textlab.sample``), but for the
    prime: by default each model's own (where its training text starts samples; see GET /models)."""

    model: Annotated[str, Field(max_length=100, description="a model name from GET /models (a name, never a path)")]
    prime: Annotated[str | None, Field(min_length=1, max_length=MAX_PRIME,
                                       description="default: the model's own prime (GET /models)")] = None
    temperature: Annotated[float, Field(ge=0, le=10, description="0 = greedy")] = 1.0
    top_k: Annotated[int | None, Field(ge=1)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    unknown: Annotated[str | None, Field(min_length=1, max_length=1, description=(
        "replace prime characters the model never saw with this one; without it they are a 400"))] = None

    @field_validator("model")
    @classmethod
    def _a_name(cls, name: str) -> str:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ValueError(f"a model is a name from GET /models (letters, digits, _ . -), never a path: {name!r}")
        return name


class GenerateRequest(Knobs):
    length: Annotated[int, Field(ge=0, le=MAX_LENGTH)] = 300
    seed: Annotated[int | None, Field(ge=0, le=SEED_MAX)] = None
    num_samples: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 1

    @model_validator(mode="after")
    def _total(self) -> "GenerateRequest":
        if self.length * self.num_samples > MAX_TOTAL_CHARS:
            raise ValueError(f"length × num_samples must be ≤ {MAX_TOTAL_CHARS} characters per request, "
                             f"not {self.length} × {self.num_samples}")
        return self


class StreamRequest(Knobs):
    """One sample, as query parameters; an unknown one (``num_samples``, a typo) is a 422, not ignored."""

    model_config = ConfigDict(extra="forbid")

    length: Annotated[int, Field(ge=0, le=MAX_LENGTH)] = 300
    seed: Annotated[int | None, Field(ge=0, le=SEED_MAX)] = None


class GenerateResponse(BaseModel):
    model: str
    texts: list[str]              # each is the prime followed by ``length`` new characters
    seed: int | None
    seconds: float                # from arrival to answer, queueing included
    batch_rows: int               # rows in the largest forward pass this request shared


class BulkRequest(BaseModel):
    requests: Annotated[list[GenerateRequest], Field(min_length=1, max_length=MAX_BULK)]
    on_error: Literal["fail", "report"] = Field("fail", description=(
        "fail: the first error fails the whole call; report: each item gets its result or its error"))


class BulkItem(BaseModel):
    ok: bool
    result: GenerateResponse | None = None
    status: int | None = None
    detail: str | None = None


class BulkResponse(BaseModel):
    results: list[BulkItem]
    seconds: float


class NextCharRequest(Knobs):
    bars: Annotated[int, Field(ge=1, le=200)] = CHART_BARS


class NextChar(BaseModel):
    char: str
    shown: str                     # a label you can see: ␣ for a space, ⏎ for a newline
    prob: float


class NextCharResponse(BaseModel):
    model: str
    prime: str
    chars: list[NextChar]          # ranked by the model's own preference; cut ones stay, at 0


class ModelInfo(BaseModel):
    name: str
    kind: str                      # lstm, gpt or gpt2
    parameters: int | None
    vocab_size: int | None
    val_bpc: float | None          # validation bits per character of the kept weights (training.kept_record)
    trained_on: str | None         # the characters it knows (a checkpoint does not name its corpus)
    prime: str                     # where its samples start unless a request says otherwise
    loaded: bool


# ---------------------------------------------------------------------------- errors

class ServeError(TextlabError):
    """A request the server refuses; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------- batching

@dataclass
class Job:
    """One request's work: its rows, its own random numbers, and where its results go."""

    prime: str
    length: int
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int | None
    num_samples: int
    deadline: float
    on_step: object = None              # called with each step's characters (list[str]) — streams
    future: Future = field(default_factory=Future)
    cancelled: bool = False
    batch_rows: int = 0

    @property
    def key(self) -> tuple:
        """Jobs with the same key can share a forward pass."""
        return (self.prime, self.temperature, self.top_k, self.top_p)

    def fail(self, err: Exception) -> None:
        self._settle(self.future.set_exception, err)

    def answer(self, texts: list[str]) -> None:
        self._settle(self.future.set_result, texts)

    def _settle(self, set_outcome, value) -> None:
        try:
            set_outcome(value)
        except InvalidStateError:  # already answered, or given up on by its request (cancelled)
            pass


class Batcher:
    """One model's worker thread: takes jobs from a bounded queue, samples compatible ones together."""

    def __init__(self, name: str, model: nn.Module, vocab: CharVocab, limits: Limits):
        self.name, self.model, self.vocab, self.limits = name, model.eval(), vocab, limits
        self.queue: list[Job] = []
        self.running_rows = 0
        self.served = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._work, name=f"textlab-serve-{name}", daemon=True)
        self._thread.start()

    @property
    def queued_rows(self) -> int:
        return sum(j.num_samples for j in self.queue)

    def submit(self, job: Job) -> Job:
        """Queue the job, or refuse it with 429 when the queue is full."""
        with self._cond:
            if self._stop:
                raise ServeError(503, "the server is shutting down")
            if self.queued_rows + job.num_samples > self.limits.max_queue:
                raise ServeError(429, f"model {self.name!r} is busy: {self.queued_rows} samples already "
                                      f"wait (limit {self.limits.max_queue}); try again in a moment")
            self.queue.append(job)
            self._cond.notify()
        return job

    def close(self) -> None:
        with self._cond:
            self._stop = True
            for job in self.queue:
                job.fail(ServeError(503, "the server is shutting down"))
            self.queue.clear()
            self._cond.notify()
        self._thread.join(timeout=5)

    def _take(self) -> list[Job] | None:
        """The oldest job and every queued job that can share its batch, up to ``max_batch`` rows."""
        with self._cond:
            while not self.queue and not self._stop:
                self._cond.wait()
            if self._stop:
                return None
            first = self.queue.pop(0)
            batch, rows = [first], first.num_samples
            for job in list(self.queue):
                if job.key == first.key and rows + job.num_samples <= self.limits.max_batch:
                    self.queue.remove(job)
                    batch.append(job)
                    rows += job.num_samples
            self.running_rows = rows
            return batch

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._run(batch)
            except Exception as err:  # never let one batch kill the worker
                for job in batch:
                    job.fail(ServeError(400 if isinstance(err, (TextlabError, ValueError)) else 500,
                                        f"cannot sample: {err}"))
            finally:
                self.running_rows = 0

    def _run(self, batch: list[Job]) -> None:
        now = time.monotonic()
        for job in batch:
            if job.cancelled:
                job.fail(ServeError(499, "the client went away"))
            elif now > job.deadline:
                job.fail(_timeout(self.limits))
        batch = [j for j in batch if not j.future.done()]
        if not batch:
            return
        first, rows = batch[0], sum(j.num_samples for j in batch)
        length = max(j.length for j in batch)
        x = prime_ids(self.model, self.vocab, first.prime, rows)
        with torch.inference_mode():
            logits, state = self.model(x)
        # Each job's own noise, padded to the longest job and stacked: (length, rows, V).
        noise = torch.cat([torch.nn.functional.pad(
            seeded_noise(j.length, j.num_samples, logits.shape[-1], j.seed, x.device),
            (0, 0, 0, 0, 0, length - j.length)) for j in batch], 1)
        starts = [0]
        for job in batch:
            starts.append(starts[-1] + job.num_samples)
        steps = []
        for t, ids in enumerate(generate_from(self.model, logits[:, -1], state, noise,
                                              first.temperature, first.top_k, first.top_p)):
            steps.append(ids)
            now = time.monotonic()
            for i, job in enumerate(batch):
                if job.future.done():
                    continue
                if job.cancelled:
                    job.fail(ServeError(499, "the client went away"))
                elif now > job.deadline:
                    job.fail(_timeout(self.limits))
                else:
                    if job.on_step is not None:
                        job.on_step([self.vocab.chars[k] for k in ids[starts[i]:starts[i + 1]].tolist()])
                    if t + 1 == job.length:  # answered as soon as its own length is reached
                        self._finish(job, steps, starts[i], rows)
            if all(job.future.done() for job in batch):
                break
        for i, job in enumerate(batch):  # length 0
            if not job.future.done():
                self._finish(job, steps, starts[i], rows)

    def _finish(self, job: Job, steps: list[torch.Tensor], start: int, rows: int) -> None:
        ids = (torch.stack(steps[:job.length], 1)[start:start + job.num_samples] if job.length
               else torch.empty(job.num_samples, 0, dtype=torch.long))
        job.batch_rows = rows
        self.served += 1
        job.answer([job.prime + self.vocab.decode(row) for row in ids.cpu()])


def _timeout(limits: Limits) -> ServeError:
    return ServeError(504, f"the request ran past its time budget of {limits.time_budget:g} s and was cut "
                           "off; ask for fewer characters or samples, or try again when the server is quieter")


# ---------------------------------------------------------------------------- models

@dataclass
class Served:
    """A model the server offers: a character model with its batcher, or GPT-2 (loaded on first use)."""

    name: str
    kind: str
    model: nn.Module | None = None
    vocab: CharVocab | None = None
    history: list[dict] = field(default_factory=list)
    prime: str = "\n"                 # where its samples start unless a request says otherwise
    batcher: Batcher | None = None
    tokenizer: object = None

    def prime_for(self, knobs: Knobs) -> str:
        """The request's prime, or else this model's own."""
        return self.prime if knobs.prime is None else knobs.prime


NAME_RULE = "a model name is letters (any script), digits and _ . - , starting with a letter or digit"


def servable_name(name: str) -> str:
    """``name`` itself if a model may have it (``NAME_PATTERN``), else a name it could be renamed to."""
    if re.fullmatch(NAME_PATTERN, name):
        return name
    return re.sub(r"[^\w.-]", "_", name).lstrip(".-") or "model"


def find_checkpoints(folder: str | Path) -> dict[str, Path]:
    """The checkpoints in ``folder`` by name (``list_models``), leaving out any that lead outside it.

    A symlink whose target lies outside the folder is skipped, so serving a folder can never
    expose a file elsewhere on the machine. A name no request could ask for (``servable_name``)
    is skipped with a note saying what to rename.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TextlabError(f"no folder {folder}: pass the folder your runs are saved in, e.g. runs/")
    root, found = folder.resolve(), {}
    for name, path in list_models(folder).items():
        if not path.resolve().is_relative_to(root):
            continue
        if (renamed := servable_name(name)) != name:
            where = path if path.parent == folder else path.parent  # NAME.pt, or the run folder NAME/
            print(f"skipping {name}: {NAME_RULE}; rename {where} to "
                  f"{where.with_name(renamed + ('.pt' if where == path else ''))}")
        else:
            found[name] = path
    return found


def load_folder(folder: str | Path) -> dict[str, Loaded]:
    """Load every checkpoint in ``folder`` (``weights_only=True``); a broken one is skipped with a note."""
    loaded = {}
    for name, path in find_checkpoints(folder).items():
        try:
            loaded[name] = load_checkpoint(path)
        except CheckpointError as err:
            print(f"skipping {name}: {err}")
    return loaded


def as_checkpoints(models, vocab: CharVocab | None = None) -> dict[str, Loaded]:
    """What ``SamplerPanel`` takes, as {name: Loaded}: a checkpoint keeps its history and prime, a bare
    (model, vocab) pair has no history and the prime "\\n"."""
    given = list(models.values()) if isinstance(models, dict) else [models]
    return {name: entry if isinstance(entry, Loaded) else Loaded(model, voc)
            for (name, (model, voc)), entry in zip(model_pairs(models, vocab).items(), given)}


class Registry:
    """The models by name, each character model with its batcher."""

    def __init__(self, models: dict[str, Loaded], limits: Limits, gpt2: str | None = None):
        for name in models:
            if (renamed := servable_name(name)) != name:
                raise TextlabError(f"cannot serve a model named {name!r}: {NAME_RULE}; "
                                   f"name it e.g. {renamed!r}")
        self.limits = limits
        self.models: dict[str, Served] = {}
        for name, ckpt in models.items():
            self.models[name] = Served(name, ckpt.model.config.kind, ckpt.model, ckpt.vocab, ckpt.history,
                                       ckpt.prime, Batcher(name, ckpt.model, ckpt.vocab, limits))
        if gpt2:
            self.models[gpt2] = Served(gpt2, "gpt2")
        self._gpt2_lock, self._gpt2_slots = threading.Lock(), threading.Semaphore(GPT2_MAX_WAITING)

    def get(self, name: str) -> Served:
        if name not in self.models:
            raise ServeError(404, f"no model {name!r}; the models are: {', '.join(self.models) or 'none'}")
        return self.models[name]

    def char_model(self, name: str, what: str) -> Served:
        served = self.get(name)
        if served.kind == "gpt2":
            raise ServeError(400, f"{name} reads tokens, not characters: {what} serves the character "
                                  f"models only ({', '.join(n for n, s in self.models.items() if s.kind != 'gpt2')})")
        return served

    def info(self, served: Served) -> ModelInfo:
        chars = "".join(served.vocab.chars) if served.vocab else None
        return ModelInfo(name=served.name, kind=served.kind,
                         parameters=count_parameters(served.model) if served.model is not None else None,
                         vocab_size=len(served.vocab) if served.vocab else None,
                         val_bpc=kept_record(served.history)["val_bpc"] if served.history else None,
                         trained_on=(f"{len(chars)} characters: {chars[:80]}" if chars else "web text (WebText)"),
                         prime=served.prime, loaded=served.model is not None)

    def gpt2_generate(self, served: Served, req: GenerateRequest, deadline: float) -> list[str]:
        """GPT-2, one sample at a time under one lock (it is far bigger than a character model).

        The request waits for the lock, and starts each sample, only until ``deadline`` (then 504).
        A sample already begun is finished: it may run past the deadline by its own length.
        """
        from . import gpt2

        if not self._gpt2_slots.acquire(blocking=False):  # a bounded wait, as for the character models
            raise ServeError(429, f"{served.name} is busy: {GPT2_MAX_WAITING} requests already run or wait; "
                                  "try again in a moment")
        try:
            if not self._gpt2_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise _timeout(self.limits)
            try:
                if served.model is None:
                    try:
                        served.model, served.tokenizer = gpt2.load_pretrained(served.name)
                    except gpt2.PretrainedUnavailable as err:
                        raise ServeError(503, str(err)) from None
                texts = []
                for i in range(req.num_samples):
                    if time.monotonic() > deadline:
                        raise _timeout(self.limits)
                    texts.append(gpt2.generate(served.model, served.tokenizer, served.prime_for(req), req.length,
                                               req.temperature, req.top_k, req.top_p,
                                               None if req.seed is None else req.seed + i))
                return texts
            finally:
                self._gpt2_lock.release()
        finally:
            self._gpt2_slots.release()

    def close(self) -> None:
        for served in self.models.values():
            if served.batcher is not None:
                served.batcher.close()


def clean_prime(prime: str, vocab: CharVocab, unknown: str | None) -> str:
    """The prime, with characters the model never saw replaced by ``unknown`` — or a 400 naming them."""
    missing = vocab.unknown(prime)
    if not missing:
        return prime
    if unknown is None:
        raise ServeError(400, f"the prime holds {len(missing)} character(s) this model never saw: "
                              f"{show_chars(missing)}. "
                              "Remove them, or send \"unknown\": \" \" to replace them")
    if unknown not in vocab:
        raise ServeError(400, f"unknown={unknown!r} is itself not in the model's vocabulary")
    return "".join(c if c in vocab else unknown for c in prime)


# ---------------------------------------------------------------------------- the app

def create_app(models: dict[str, Loaded], limits: Limits = Limits(), gpt2: str | None = None) -> FastAPI:
    """The FastAPI app serving ``models``: {name: checkpoint} (``load_folder``, or ``Loaded(model, vocab)``).

    ``gpt2`` names a pretrained model (e.g. "distilgpt2") to offer as well, loaded on first use.
    """
    registry = Registry(models, limits, gpt2)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        registry.close()  # the worker threads end with the server

    app = FastAPI(title="textlab", description="Character-level language models: generate, stream, "
                  "inspect the next-character distribution.", version="0.1.0", lifespan=lifespan)
    app.state.registry = registry

    @app.exception_handler(ServeError)
    async def _serve_error(_request: Request, err: ServeError):
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, err: RequestValidationError):
        """FastAPI's own 422, less the input it echoes: NaN or a lone surrogate would make that a 500."""
        errors = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in err.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    def submit(req: GenerateRequest | StreamRequest, deadline: float, on_step=None) -> tuple[Served, Job]:
        served = registry.char_model(req.model, "this endpoint") if on_step else registry.get(req.model)
        if served.kind == "gpt2":
            return served, None
        prime = clean_prime(served.prime_for(req), served.vocab, req.unknown)
        job = Job(prime, req.length, req.temperature, req.top_k, req.top_p, req.seed,
                  getattr(req, "num_samples", 1), deadline, on_step)
        try:
            check_params(job.temperature, job.top_k, job.top_p, job.length, job.num_samples)
        except ValueError as err:
            raise ServeError(400, str(err)) from None
        return served, served.batcher.submit(job)

    async def generate_one(req: GenerateRequest, start: float) -> GenerateResponse:
        """One request that arrived at ``start``: its time budget runs from then (a bulk's items share one)."""
        deadline = start + limits.time_budget
        served, job = submit(req, deadline)
        if job is None:
            from starlette.concurrency import run_in_threadpool

            texts, rows = await run_in_threadpool(registry.gpt2_generate, served, req, deadline), 1
        else:
            try:
                texts = await asyncio.wait_for(asyncio.wrap_future(job.future), limits.time_budget + 1)
            except asyncio.TimeoutError:
                job.cancelled = True
                raise _timeout(limits) from None
            rows = job.batch_rows
        return GenerateResponse(model=req.model, texts=texts, seed=req.seed,
                                seconds=round(time.monotonic() - start, 4), batch_rows=rows)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/health")
    def health() -> dict:
        """Loaded models and their state: samples waiting and running, requests served."""
        return {"status": "ok", "models": {
            name: {"kind": s.kind, "loaded": s.model is not None,
                   "queued": s.batcher.queued_rows if s.batcher else 0,
                   "running": s.batcher.running_rows if s.batcher else 0,
                   "served": s.batcher.served if s.batcher else 0}
            for name, s in registry.models.items()}}

    @app.get("/models", response_model=list[ModelInfo])
    def list_served() -> list[ModelInfo]:
        """Each model: name, kind, size, vocabulary, best validation bits per character."""
        return [registry.info(s) for s in registry.models.values()]

    @app.post("/generate", response_model=GenerateResponse)
    async def generate(req: GenerateRequest) -> GenerateResponse:
        """The prime followed by ``length`` new characters, ``num_samples`` times. Same seed, same text."""
        return await generate_one(req, time.monotonic())

    @app.post("/generate/bulk", response_model=BulkResponse)
    async def generate_bulk(bulk: BulkRequest) -> BulkResponse:
        """Several requests at once (run concurrently, so compatible ones share batches)."""
        start = time.monotonic()
        gpt2_turns = asyncio.Lock()  # GPT-2 samples one request at a time: its items wait here, not for a slot

        async def one(req: GenerateRequest) -> GenerateResponse:
            if getattr(registry.models.get(req.model), "kind", None) != "gpt2":
                return await generate_one(req, start)
            async with gpt2_turns:
                return await generate_one(req, start)

        outcomes = await asyncio.gather(*(one(r) for r in bulk.requests), return_exceptions=True)
        items = []
        for out in outcomes:
            if isinstance(out, ServeError):
                if bulk.on_error == "fail":
                    raise out
                items.append(BulkItem(ok=False, status=out.status, detail=str(out)))
            elif isinstance(out, BaseException):
                raise out
            else:
                items.append(BulkItem(ok=True, result=out))
        return BulkResponse(results=items, seconds=round(time.monotonic() - start, 4))

    @app.get("/generate/stream")
    async def generate_stream(req: Annotated[StreamRequest, Query()]) -> StreamingResponse:
        """Server-sent events: ``data: {"text": CHAR}`` for each character as it is made, then
        ``event: done`` with the whole text (or ``event: error``), as ``textlab.stream`` yields them."""
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue = asyncio.Queue()

        def put(item: str | None) -> None:  # called on the worker thread
            if not loop.is_closed():
                loop.call_soon_threadsafe(chunks.put_nowait, item)

        start = time.monotonic()
        _, job = submit(req, start + limits.time_budget, lambda chars: put(chars[0]))
        job.future.add_done_callback(lambda _f: put(None))

        async def events():
            try:
                while (char := await chunks.get()) is not None:  # one event per character, as made
                    yield f"data: {json.dumps({'text': char})}\n\n"
                err = job.future.exception()
                if err is not None:
                    yield f"event: error\ndata: {json.dumps({'detail': str(err)})}\n\n"
                else:
                    done = {"text": job.future.result()[0], "seconds": round(time.monotonic() - start, 4)}
                    yield f"event: done\ndata: {json.dumps(done)}\n\n"
            finally:
                job.cancelled = True  # the client left: stop sampling for it

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/next-char", response_model=NextCharResponse)
    async def next_char(req: NextCharRequest) -> NextCharResponse:
        """The distribution over the character after ``prime``, after temperature, top-k and top-p."""
        from starlette.concurrency import run_in_threadpool

        served = registry.char_model(req.model, "/next-char")
        prime = clean_prime(served.prime_for(req), served.vocab, req.unknown)
        bars = await run_in_threadpool(next_char_bars, served.model, served.vocab, prime, req.temperature,
                                       req.top_k, req.top_p, req.bars)
        return NextCharResponse(model=req.model, prime=prime,
                                chars=[NextChar(char=c, shown=show_char(c), prob=round(p, 6))
                                       for c, p in bars])

    return app


def gpt2_name() -> str | None:
    """The pretrained GPT-2 to offer: "distilgpt2" where the Hugging Face hub is reachable, else None."""
    from .gpt2 import hub_available

    try:
        import transformers  # noqa: F401
    except ImportError:
        return None
    return "distilgpt2" if hub_available() else None


# ---------------------------------------------------------------------------- running it

def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits()) -> None:
    """Serve every checkpoint in ``folder`` until Ctrl-C or SIGTERM (what ``python -m textlab serve`` runs)."""
    models = load_folder(folder)
    gpt2 = gpt2_name()
    if not models and not gpt2:
        raise TextlabError(f"no checkpoints to serve in {folder} (NAME.pt or NAME/model.pt); train one first: "
                           "python -m textlab train --corpus tiny_shakespeare --out runs/shakespeare")
    app = create_app(models, limits, gpt2)
    names = list(models) + ([gpt2] if gpt2 else [])
    print(f"serving {', '.join(names)} at http://{host}:{port}/ (API docs: /docs); Ctrl-C stops", flush=True)
    # uvicorn handles SIGINT and SIGTERM: it stops taking requests, finishes, and ends the workers.
    uvicorn.run(app, host=host, port=port, log_level="warning")


@dataclass
class BackgroundServer:
    """A server running in a thread of this process (see ``serve_in_notebook``)."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Stop the server and its worker threads; waits until they are gone."""
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def _repr_html_(self) -> str:
        running = self.thread.is_alive()
        state = "running" if running else "stopped"
        # In Colab the browser is not on this machine: a link to its 127.0.0.1 would lead nowhere.
        if in_colab():
            return (f"textlab server {state} on port {self.server.config.port} of the Colab machine"
                    + (": its page is shown above, through Colab's port proxy" if running else ""))
        return f'textlab server {state} at <a href="{self.url}" target="_blank">{self.url}</a>'


def start_background(models, vocab: CharVocab | None = None, host: str = "127.0.0.1", port: int = 0,
                     limits: Limits = Limits()) -> BackgroundServer:
    """Start a server for models in memory, in a background thread; returns once it answers.

    ``models`` is what ``SamplerPanel`` takes: one model plus its vocab, a loaded checkpoint,
    or a dict {name: (model, vocab) or checkpoint}; each name as ``NAME_RULE`` says.
    ``port=0`` picks a free port.
    """
    import socket

    checkpoints = as_checkpoints(models, vocab)
    if port == 0:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(checkpoints, limits), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="textlab-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise TextlabError(f"the server did not start on {host}:{port} (is the port in use?)")
        time.sleep(0.02)
    return BackgroundServer(f"http://{host}:{port}/", server, thread)


def serve_in_notebook(models, vocab: CharVocab | None = None, height: int = 640,
                      limits: Limits = Limits()) -> BackgroundServer:
    """Serve models in memory and show the page in the notebook: Colab's port proxy there, an IFrame elsewhere.

    Call ``.stop()`` on the result when done (before the notebook ends).
    """
    from IPython.display import IFrame, display

    server = start_background(models, vocab, limits=limits)
    port = server.server.config.port
    if in_colab():  # the browser cannot reach the Colab machine's 127.0.0.1: go through its port proxy
        from google.colab import output

        output.serve_kernel_port_as_iframe(port, height=str(height))
    else:
        display(IFrame(server.url, width="100%", height=height))
    return server
