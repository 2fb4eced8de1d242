"""The préfecture's letters after the acknowledgement (docs/protocols.md §1.8-§1.11, §2.2): a
courrier simple (2-1), a demande de pièces complémentaires (3-1), a lettre d'observations (4-1),
a déféré au tribunal administratif (5-1), collected for every acknowledged acte, shown beside it
(its own state never changes), and answered (2-2, 3-3, 3-4, 4-3, 4-4) exactly once.

- rules.py: what each message is and takes, and the délai the law sets;
- collect.py: one listing per collectivité and interval, each message recorded once;
- replies.py: the reply requested (API, console, Pastell API), or the letter closed without one;
- sender.py: the worker sends each reply once and follows it to the préfecture's acknowledgement;
- messages.py: reading the messages, journaling and announcing what happens to them;
- ledger.py: the effect mechanics (due rows, lease, retry delay, reschedule);
- worker.py: the worker's timers.
"""
