"""Where does the answer appear, and who writes it? Measured on a whole task set, not one prompt.

For every prompt of a task (IOI or induction, core.interp.residual.tasks), read the stream at the
answer position with a lens at every stream point: the share of prompts whose top prediction is
already the answer says where the answer becomes readable (core.interp.residual.verdicts). Direct
logit attribution, averaged over the prompts, says which heads write it. On the bundled model the
page then puts those heads next to the ones its evaluation report lists by type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from core.interp.residual.dla import DLAResult, direct_logit_attribution
from core.interp.residual.logit_lens import Translate, lens_log_probs, read_streams, stream_points
from core.interp.residual.tasks import TaskSet
from core.interp.residual.verdicts import Readability, Writers, readability, writers


@dataclass(frozen=True)
class TaskTruth:
    task: str
    n_prompts: int
    logit: Readability
    tuned: Readability | None
    dla: DLAResult
    writers: Writers


def readable_on(lm, ts: TaskSet, translate: Translate | None = None, *, lens: str = "logit",
                hooks: Sequence = ()) -> Readability:
    streams, _ = read_streams(lm, ts.tokens, hooks)  # [point, batch, pos, d_model]
    at = streams[:, torch.arange(ts.n), ts.positions]  # [point, batch, d_model]
    logp = lens_log_probs(lm, at, translate)  # [point, batch, d_vocab]
    top1 = logp.argmax(-1).numpy()
    prob = logp.exp().gather(-1, ts.answer_ids[None, :, None].expand(logp.shape[0], -1, 1))[..., 0]
    return readability(top1, prob.numpy(), ts.answer_ids.numpy(), stream_points(lm), lens=lens,
                       answer=ts.answer)


def task_truth(lm, ts: TaskSet, translate: Translate | None = None, hooks: Sequence = ()) -> TaskTruth:
    """Readability under the logit lens (and the tuned lens, if translate is given) and DLA."""
    dla = direct_logit_attribution(lm, ts.tokens, ts.positions, ts.answer_ids, ts.other_ids,
                                   answer=ts.answer, other=ts.other, hooks=hooks)
    return TaskTruth(ts.task, ts.n, readable_on(lm, ts, hooks=hooks),
                     None if translate is None else readable_on(lm, ts, translate, lens="tuned", hooks=hooks),
                     dla, writers(dla))
