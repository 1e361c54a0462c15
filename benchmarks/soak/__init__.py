"""``presence bench soak``: one long call over WebRTC with questions looped in real time."""
