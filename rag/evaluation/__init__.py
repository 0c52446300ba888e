"""Measuring: question sets, retrieval and answer metrics, the evaluator and its reports.

    from rag.evaluation import Evaluator, load_questions, open_eval_index
    questions, problems = load_questions("eval/devset/questions.jsonl")
    rag = open_eval_index("eval/devset/articles.jsonl")
    report = Evaluator(rag, questions).run()
    report.save("eval-out/")
"""

from rag.evaluation.indexes import eval_index_key, open_eval_index
from rag.evaluation.questions import EvalQuestion, LineProblem, load_beir, load_questions
from rag.evaluation.report import EvalReport, summarize
from rag.evaluation.runner import Evaluator

__all__ = ["EvalQuestion", "EvalReport", "Evaluator", "LineProblem", "eval_index_key", "load_beir", "load_questions",
           "open_eval_index", "summarize"]
