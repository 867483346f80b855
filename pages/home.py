"""Home: what the app does, the five steps with what this workspace has done, and the tutorial."""

import streamlit as st

from plmcore import guide, ui
from plmcore.demo import DEMO_NAME, DESCRIPTION
from plmcore.runs import list_runs

st.title("Fine-tune protein language models on your own labels")
st.markdown(
    "This app teaches a protein language model (ESM-2, ProtBERT, ProtT5, Ankh) to predict **your** labels, "
    "such as whether a tyrosine is dephosphorylated, from sequence alone. It trains small adapters (LoRA) on "
    "your computer, tests the result on sequences it never saw, compares it with simple baselines, and then "
    "scores new sequences. Nothing leaves this computer."
)


def steps() -> None:
    done = guide.done(ui.workspace())
    st.subheader("Five steps")
    for n, s in enumerate(guide.STEPS, start=1):
        c = st.columns([3, 9, 2], vertical_alignment="center")
        c[0].page_link(s.page, label=f"{n}. {s.title}", icon=s.icon)
        c[1].markdown(s.what)
        c[2].markdown(":green[:material/check_circle: done]" if done[s.key] else
                      ":gray[:material/radio_button_unchecked: not yet]")


def latest_run() -> None:
    runs = list_runs(ui.runs_root())
    if not runs:
        return
    run = runs[0]
    st.subheader("Latest run")
    c = st.columns([3, 2])
    c[0].markdown(f"**{ui.md(run.title)}** · {ui.md(run.status().get('state'))}")
    ui.random_badge(run, where=c[1])


def tutorial() -> None:
    st.subheader("Try the tutorial")
    st.markdown(DESCRIPTION)
    store = ui.datasets()
    if store.get(DEMO_NAME) is not None:
        st.success(f"The tutorial dataset '{DEMO_NAME}' is ready, with its split saved. Next: train on it.")
        ui.page_link("train", "Train on it")
        return
    if st.button("Build the tutorial dataset", key="home_tutorial", type="primary",
                 help="Made on this computer in a second; no download."):
        from plmcore.demo import build_demo

        ds = build_demo(store)
        ui.remember("dataset", ds.name)
        st.success(f"Saved the dataset '{DEMO_NAME}' ({ds.meta['n']} windows) with a 60/20/20 split. Next: train on "
                   "it (the tiny test models train in seconds; their weights are random, so their scores mean "
                   "nothing).")
        ui.page_link("train", "Train on it")


def page() -> None:
    steps()
    latest_run()
    tutorial()


ui.guard(page)
