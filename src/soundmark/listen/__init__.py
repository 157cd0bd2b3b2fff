"""Recognise what a sound device hears: a microphone, or the monitor of what the machine plays.

devices.py lists and opens input devices (PortAudio through sounddevice) as mono blocks;
local.py and remote.py recognise the last seconds heard — against a store on this machine, or
through a server's WebSocket endpoint; session.py drives them once (until a match) or
continuously (the live-stream play tracker, one report per song); now_playing.py keeps the
overlay file of the song playing.
"""
