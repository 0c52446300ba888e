"""From a question to a checked, cited Answer: retrieval, dates, evidence, prompts, generation's checks (citations, grounding, injection, guards)."""
