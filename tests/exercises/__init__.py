"""Tests of the "Your turn" checker (``resnet_tutorial.exercises``): the engine and each lesson's exercises."""
