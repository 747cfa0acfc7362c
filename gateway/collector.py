"""The cyclic garbage collector's settings for a long-running process.

CPython collects its youngest generation every 700 new container objects and, now and
then, walks every object alive, start-up's included. A gateway member allocates a few
hundred per event (messages, models, blocks) and almost none of them is ever part of a
cycle: at 5,000 events/s it ran some 2,200 collections over 60,000 events, which freed
1,800 objects and took 18 % of its CPU time, holding the interpreter lock throughout
(``docs/performance.md``). So, once a process has started:

- what start-up allocated (modules, schemas, validators) is frozen out of every
  collection (:func:`gc.freeze`);
- the young generation is collected every 20,000 allocations instead of 700, the
  oldest every 2 million. Garbage that does form cycles (an exception and its
  traceback, say) is still collected, a little later. (With thresholds of 50,000, 20
  and 10 the gateway's RSS grew 43 MB over a million events; with these, 32 MB.)
"""

from __future__ import annotations

import gc

#: allocations between collections of the young generation, and collections of one
#: generation between collections of the next
THRESHOLDS = (20_000, 10, 10)


def settle_collector() -> None:
    """Call once start-up is done (imports made, settings read), before the main loop."""
    gc.collect()  # start-up's garbage goes now rather than into the frozen set
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
