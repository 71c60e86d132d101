from server.roles import GRANTS, may_see

NONE: frozenset[str] = frozenset()


def test_classrooms_see_the_teacher_and_only_the_called_on_class():
    assert may_see("classroom", "a", "teacher", "t", "camera", None, NONE)
    assert not may_see("classroom", "a", "classroom", "b", "camera", None, NONE)
    assert may_see("classroom", "a", "classroom", "b", "camera", "b", NONE)


def test_teacher_sees_every_class_and_observer_everything():
    assert may_see("teacher", "t", "classroom", "b", "camera", None, NONE)
    assert may_see("observer", "o", "classroom", "b", "mic", None, NONE)
    assert may_see("observer", "o", "teacher", "t", "screen", None, NONE)


def test_muted_class_mic_reaches_nobody_but_its_camera_does():
    muted = frozenset({"b"})
    assert not may_see("teacher", "t", "classroom", "b", "mic", None, muted)
    assert may_see("teacher", "t", "classroom", "b", "camera", None, muted)


def test_nobody_receives_their_own_media_and_observers_are_invisible():
    assert not may_see("teacher", "t", "teacher", "t", "camera", None, NONE)
    assert not GRANTS["observer"].visible and not GRANTS["observer"].publishes
    assert GRANTS["classroom"].publishes == {"camera", "mic"}
