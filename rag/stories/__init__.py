"""News-native views over the index: the period's articles grouped into stories (grouping), a
briefing of the top stories in cited sentences (briefing, summaries), a dated timeline of a
subject (timeline), and the earlier and later coverage of an article (related). Every sentence
shown is an article sentence, or a model sentence that passed the answers' grounding checks."""
