"""Any presence pipeline as a pipecat bot, served by pipecat's own runner (or Pipecat Cloud).

    PRESENCE_PIPELINE=local python examples/bot.py -t webrtc      # open http://localhost:7860/
    PRESENCE_PIPELINE=pipelines/cloud.yaml python examples/bot.py -t daily

``PRESENCE_PIPELINE`` is a pipeline file or a bundled name; ``PRESENCE_SET`` holds overrides
(``;``-separated, as ``--set`` takes them). The runner's flags (``-t``, ``--host``, ``--port``,
...) are pipecat's; see ``presence.framework.runner_bot`` and ``deploy/Dockerfile``.
"""

from presence import bot, runner_main  # noqa: F401  (pipecat's runner calls bot(runner_args))

if __name__ == "__main__":
    runner_main()
