"""The sigma schedules the friendly scheduler names pin, computed as their references define them (numpy only).

Each function takes the model's discrete sigmas (``model_sigmas``, index = training timestep, ascending) and a
step count ``n`` and returns ``n`` decreasing sigmas, without the final 0 the samplers append:

- ``normal``: k-diffusion's ``DiscreteSchedule.get_sigmas`` (A1111's automatic schedule and its "Uniform" schedule
  type) = ComfyUI's "normal" scheduler: timesteps ``linspace(T - 1, 0, n)``, sigma interpolated linearly in
  log sigma between the two neighbouring training timesteps;
- ``karras``: Karras et al. (2022) with rho = 7 between the model's sigma_min and sigma_max (k-diffusion
  ``get_sigmas_karras``, ComfyUI "karras");
- ``exponential``: evenly spaced in log sigma between sigma_max and sigma_min (k-diffusion
  ``get_sigmas_exponential``, ComfyUI "exponential");
- ``beta``: A1111's "Beta" schedule type (Lee et al. 2024, alpha = beta = 0.6): the beta distribution's ppf at
  ``1 - linspace(0, 1, n)`` mapped linearly onto [sigma_min, sigma_max], as diffusers' ``use_beta_sigmas``.
  ComfyUI's "beta" scheduler is different: it applies the ppf to training timestep indices (rounded, repeats
  dropped), which starts much more steeply; it has no name in the format.
"""

from __future__ import annotations

import numpy as np

KARRAS_RHO = 7.0
BETA_ALPHA = BETA_BETA = 0.6


def model_sigmas(config, alphas_cumprod) -> np.ndarray:
    """The model's sigma at each training timestep, sqrt((1 - alpha_bar) / alpha_bar), in float64.

    For the linear and scaled-linear beta schedules the betas are rebuilt in float64 from ``config`` (a scheduler
    config), as the LDM/SGM code behind A1111 and ComfyUI does; diffusers builds them in float32, which moves
    SDXL's sigmas by up to 1.3e-5 relative. Other schedules use the scheduler's ``alphas_cumprod``.
    """
    schedule = config.get("beta_schedule")
    if config.get("trained_betas") is None and schedule in ("linear", "scaled_linear"):
        start, end, count = config["beta_start"], config["beta_end"], config["num_train_timesteps"]
        if schedule == "scaled_linear":
            betas = np.linspace(start ** 0.5, end ** 0.5, count, dtype=np.float64) ** 2
        else:
            betas = np.linspace(start, end, count, dtype=np.float64)
        alphas_cumprod = np.cumprod(1.0 - betas)
    alphas_cumprod = np.asarray(alphas_cumprod, dtype=np.float64)
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


def sigma_at(model: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Sigma at fractional timesteps ``t``: linear interpolation of log sigma (k-diffusion ``t_to_sigma``)."""
    return np.exp(np.interp(t, np.arange(len(model)), np.log(model)))


def timestep_at(model: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """The fractional timesteps of ``sigmas``, the inverse of :func:`sigma_at` (k-diffusion ``sigma_to_t``)."""
    return np.interp(np.log(sigmas), np.log(model), np.arange(len(model)))


def normal(model: np.ndarray, n: int) -> np.ndarray:
    return sigma_at(model, np.linspace(len(model) - 1, 0, n))


def karras(model: np.ndarray, n: int) -> np.ndarray:
    ramp = np.linspace(0, 1, n)
    lo, hi = model[0] ** (1 / KARRAS_RHO), model[-1] ** (1 / KARRAS_RHO)
    return (hi + ramp * (lo - hi)) ** KARRAS_RHO


def exponential(model: np.ndarray, n: int) -> np.ndarray:
    return np.exp(np.linspace(np.log(model[-1]), np.log(model[0]), n))


def beta(model: np.ndarray, n: int) -> np.ndarray:
    from scipy.stats import beta as beta_distribution

    fractions = beta_distribution.ppf(1 - np.linspace(0, 1, n), BETA_ALPHA, BETA_BETA)
    return model[0] + fractions * (model[-1] - model[0])


SCHEDULES = {"normal": normal, "karras": karras, "exponential": exponential, "beta": beta}
