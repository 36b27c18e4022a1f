"""Agents: Dreamer (world model + actor-critic in imagination) and the CEM planner.

The interface the training loop relies on:

  agent.policy(obs, state, reset, noise_scale, planner) -> (action, state)
      obs: dict of [num_envs, ...] arrays; state: None or what the last call returned;
      reset: [num_envs] bool, envs that just reset; noise_scale: [num_envs] float.
      planner: 'policy_sample', 'policy_mode', or the name of one of agent.planners
      (CEM planners, one per objective and horizon; see scripts.build.planner_name).
  agent.train(batch) -> dict of scalar metrics (one update of every optimiser).
  agent.evaluate(batch) -> dict of scalar metrics (losses only, no update).
"""
